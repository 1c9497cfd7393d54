// @ts-check
// A saved explorer page (crosslens._export, explorer.save_html): no kernel, no network. A
// stand-in for the anywidget model serves the view its saved traits and payload; what the
// view sets stays in the page, and what it would send to the kernel goes nowhere (the shell
// shows those controls disabled). The view's module arrives as text and is imported from a
// blob URL, exactly as anywidget loads it.

/**
 * The saved traits as a model: get, set, on, off, save_changes, send.
 * @param {Record<string, any>} state
 */
export function offlineModel(state) {
  /** @type {Map<string, Set<(...args: any[]) => void>>} */
  const listeners = new Map();
  const emit = (/** @type {string} */ event) => {
    for (const listener of listeners.get(event) || []) listener();
  };
  return {
    /** @param {string} name */
    get: (name) => state[name],
    /** @param {string} name @param {any} value */
    set(name, value) {
      if (state[name] === value) return;
      state[name] = value;
      emit(`change:${name}`);
    },
    /** @param {string} event @param {(...args: any[]) => void} listener */
    on(event, listener) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      /** @type {Set<any>} */ (listeners.get(event)).add(listener);
    },
    /** @param {string} event @param {(...args: any[]) => void} listener */
    off(event, listener) {
      listeners.get(event)?.delete(listener);
    },
    save_changes() {},
    send() {},
  };
}

/**
 * The bytes of a base64 text.
 * @param {string} text
 */
function decodeBase64(text) {
  const binary = atob(text.trim());
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Render the saved view into `el` from the page's three data elements.
 * @param {HTMLElement} el
 */
export async function mountSaved(el) {
  const read = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id)).textContent || "";
  const state = JSON.parse(read("crosslens-state"));
  const payload = decodeBase64(read("crosslens-payload"));
  state._payload = new DataView(payload.buffer);
  const source = new TextDecoder().decode(decodeBase64(read("crosslens-module")));
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const view = (await import(url)).default;
  URL.revokeObjectURL(url);
  view.render({ model: offlineModel(state), el });
}
