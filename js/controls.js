// @ts-check
// DOM and control builders shared by every explorer. Text is set with textContent only.
// Every control stops keydown propagation: JupyterLab >= 4.1 otherwise takes ArrowLeft /
// ArrowRight pressed on a focused range input for its own notebook shortcuts.

/**
 * @typedef {{ className?: string, text?: string, role?: string, attrs?: Record<string, string | number | boolean>, style?: Record<string, string> }} ElementOptions
 */

/**
 * Create an element. `role` becomes data-role (stable hooks for tests), `text` textContent.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {ElementOptions} [options]
 * @param {Array<Node | null | undefined | false>} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.role) node.dataset.role = options.role;
  if (options.text !== undefined) node.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs || {})) {
    if (value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const [name, value] of Object.entries(options.style || {})) node.style.setProperty(name, value);
  for (const child of children) if (child) node.appendChild(child);
  return node;
}

/**
 * Keep keyboard events on a control away from JupyterLab's shortcuts.
 * @param {HTMLElement} control
 * @param {AbortSignal} signal removes the listener
 */
export function guardKeys(control, signal) {
  control.setAttribute("data-lm-suppress-shortcuts", "true");
  control.addEventListener("keydown", (e) => e.stopPropagation(), { signal });
}

/**
 * A labelled `<input type="range">` over integer positions 0..count-1.
 * @param {{ role: string, label: string, count: number, value?: number, signal: AbortSignal, onInput: (index: number) => void }} options
 */
export function rangeControl({ role, label, count, value = 0, signal, onInput }) {
  const input = h("input", {
    role,
    className: "xl-range",
    attrs: { type: "range", min: 0, max: Math.max(count - 1, 0), step: 1, value, "aria-label": label },
  });
  guardKeys(input, signal);
  input.addEventListener("input", () => onInput(Number(input.value)), { signal });
  return input;
}

/**
 * Tick marks under a range input, at fractions of its track (the thumb's travel).
 * @param {Array<{ fraction: number, label: string, emphasis?: boolean }>} ticks
 * @param {string} role
 */
export function rangeTicks(ticks, role) {
  const row = h("div", { className: "xl-ticks", role, attrs: { "aria-hidden": "true" } });
  for (const tick of ticks) {
    const mark = h("span", { className: tick.emphasis ? "xl-tick xl-tick-emphasis" : "xl-tick" }, [
      h("span", { className: "xl-tick-line" }),
      h("span", { className: "xl-tick-label", text: tick.label }),
    ]);
    mark.style.setProperty("--xl-at", String(tick.fraction));
    if (tick.fraction <= 0.02) mark.classList.add("xl-tick-start");
    if (tick.fraction >= 0.98) mark.classList.add("xl-tick-end");
    row.appendChild(mark);
  }
  return row;
}

/**
 * A labelled `<select>`.
 * @param {{ role: string, label: string, signal: AbortSignal, onChange: (value: string) => void }} options
 */
export function selectControl({ role, label, signal, onChange }) {
  const select = h("select", { role, className: "xl-select", attrs: { "aria-label": label } });
  guardKeys(select, signal);
  select.addEventListener("change", () => onChange(select.value), { signal });
  return select;
}

/**
 * Replace a select's options (text via textContent).
 * @param {HTMLSelectElement} select
 * @param {Array<{ value: string, label: string, disabled?: boolean }>} options
 * @param {string} selected
 */
export function setOptions(select, options, selected) {
  const same = select.options.length === options.length
    && options.every((o, i) => select.options[i].value === o.value && select.options[i].textContent === o.label
      && select.options[i].disabled === Boolean(o.disabled));
  if (!same) {
    select.replaceChildren(...options.map((o) => {
      const option = h("option", { text: o.label, attrs: { value: o.value } });
      option.disabled = Boolean(o.disabled);
      return option;
    }));
  }
  select.value = selected;
}

/**
 * A row of the control panel: a visible label and its control(s).
 * @param {string} label
 * @param {Array<Node | null | undefined | false>} children
 * @param {string} [role]
 */
export function controlRow(label, children, role) {
  return h("div", { className: "xl-row", role }, [
    h("span", { className: "xl-row-label", text: label }),
    h("div", { className: "xl-row-body" }, children),
  ]);
}

/**
 * Coalesce redraw requests into one requestAnimationFrame callback.
 * @param {() => void} draw
 */
export function frameScheduler(draw) {
  let handle = 0;
  return {
    request() {
      if (!handle) handle = requestAnimationFrame(() => { handle = 0; draw(); });
    },
    cancel() {
      if (handle) cancelAnimationFrame(handle);
      handle = 0;
    },
  };
}

/**
 * Two-way sync of one model trait, throttled towards the kernel.
 *
 * `push(v)` sets the trait and saves at most once per `wait` ms (leading and trailing
 * edge), so dragging a slider never floods the kernel; `flush()` sends a pending value
 * now. `apply(v)` runs when the value changes from elsewhere (Python), never for our own
 * pushes.
 * @param {any} model anywidget model
 * @param {string} name
 * @param {(value: any) => void} apply
 * @param {number} [wait]
 */
export function traitSync(model, name, apply, wait = 100) {
  let last = model.get(name);
  let pending = /** @type {{ value: any } | null} */ (null);
  let timer = /** @type {ReturnType<typeof setTimeout> | 0} */ (0);
  let sentAt = -Infinity;
  const onChange = () => {
    const value = model.get(name);
    if (value === last) return;
    last = value;
    pending = null;
    apply(value);
  };
  model.on(`change:${name}`, onChange);
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = 0;
    if (!pending) return;
    const { value } = pending;
    pending = null;
    last = value;
    sentAt = performance.now();
    model.set(name, value);
    model.save_changes();
  };
  return {
    /** @param {any} value */
    push(value) {
      if (value === last && !pending) return;
      pending = { value };
      const elapsed = performance.now() - sentAt;
      if (elapsed >= wait) flush();
      else if (!timer) timer = setTimeout(flush, wait - elapsed);
    },
    flush,
    dispose() {
      if (timer) clearTimeout(timer);
      timer = 0;
      pending = null;
      model.off(`change:${name}`, onChange);
    },
  };
}

/**
 * Format a number for labels (a typographic minus sign, never "-0.00").
 * @param {number} v
 * @param {number} [digits]
 */
export function formatNumber(v, digits = 2) {
  const text = v.toFixed(digits);
  if (text === `-${(0).toFixed(digits)}`) return (0).toFixed(digits);
  return text.startsWith("-") ? `−${text.slice(1)}` : text;
}

/**
 * Listen to model events. Returns the render's disconnect: it removes these listeners and
 * flushes, then disposes, the trait syncs.
 * @param {any} model anywidget model
 * @param {Record<string, (...args: any[]) => void>} handlers event name -> listener
 * @param {Record<string, ReturnType<typeof traitSync>>} syncs
 * @returns {() => void}
 */
export function connectModel(model, handlers, syncs) {
  for (const [event, handler] of Object.entries(handlers)) model.on(event, handler);
  return () => {
    for (const sync of Object.values(syncs)) {
      try { sync.flush(); } catch (_) { /* the model may already be closed */ }
      sync.dispose();
    }
    for (const [event, handler] of Object.entries(handlers)) model.off(event, handler);
  };
}
