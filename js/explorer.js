// @ts-check
// The shell every crosslens view stands on, the browser half of crosslens._explorer.Explorer:
// it decodes the ONE binary payload, builds the header (title, busy indicator, progress,
// Stop and Run again for views with background jobs), the status, summary and error lines,
// the input picker and the target select, wires the model's events, redraws in the next
// animation frame, marks the root ready once the first frame is drawn, and returns the
// cleanup. In a saved page (crosslens._export) the model has no kernel behind it: the
// controls that need one are disabled and say so. A view supplies its own panels and drawing through a spec (see mountExplorer).
import { decodePayload } from "./payload.js";
import { paletteOf } from "./colormaps.js";
import { connectModel, controlRow, frameScheduler, guardKeys, h, selectControl, setOptions, traitSync } from "./controls.js";
import { inputPicker } from "./panels.js";

const THUMB_SIZE = 34;

/**
 * What every payload carries (crosslens._explorer.Explorer._pack), decoded once per payload.
 * @typedef {{ meta: Record<string, any>, arrays: Record<string, any>, n: number, names: string[],
 *   source: ArrayLike<number>, target: ArrayLike<number>, requested: ArrayLike<number>,
 *   shape: { channels: number, height: number, width: number }, range: [number, number] }} Common
 */

/**
 * A view's part. Every hook receives the shell.
 * @typedef {{
 *   className: string, title: string, subtitle: (meta: Record<string, any>) => string, help: (common: Common) => string,
 *   busyText: string, jobs?: boolean, picker: (common: Common) => boolean,
 *   syncs: (shell: Shell) => Record<string, ReturnType<typeof traitSync>>,
 *   load: (shell: Shell, first: boolean) => void,
 *   build: (shell: Shell) => { main: Node, controls: Node[] },
 *   draw: (shell: Shell, index: number) => void,
 *   onIndex?: (shell: Shell, index: number) => void, stopped?: (shell: Shell) => boolean,
 *   events?: Record<string, (...args: any[]) => void>,
 * }} ViewSpec
 */

/**
 * @typedef {{ model: any, root: HTMLElement, signal: AbortSignal, common: Common, palette: ReturnType<typeof paletteOf>,
 *   offline: boolean,
 *   ui: Record<string, any>, state: Record<string, any>, index: number,
 *   syncs: Record<string, ReturnType<typeof traitSync>>, redraw: () => void, selectIndex: (i: number) => void,
 *   setStatus: (text: string) => void }} Shell
 */

/**
 * The common part of a payload.
 * @param {ReturnType<typeof decodePayload>} payload
 * @returns {Common}
 */
function commonOf({ meta, arrays }) {
  const [channels, height, width] = meta.image_shape;
  return {
    meta, arrays, n: arrays.x.shape[0], names: meta.class_names.map(String),
    source: arrays.source.data, target: arrays.target.data, requested: arrays.requested.data,
    shape: { channels, height, width }, range: meta.pixel_range,
  };
}

/**
 * The palette's colours as CSS custom properties on the root, for the stylesheet.
 * @param {HTMLElement} root
 * @param {import("./colormaps.js").PaletteSpec} palette
 */
function applyPalette(root, palette) {
  root.style.setProperty("--xl-palette-source", palette.source);
  root.style.setProperty("--xl-palette-target", palette.target);
  for (const [name, color] of Object.entries(palette.methods)) root.style.setProperty(`--xl-${name}`, color);
}

/**
 * Render a view into `el`; returns the cleanup that anywidget calls on teardown.
 * @param {{ model: any, el: HTMLElement }} context
 * @param {ViewSpec} spec
 */
export function mountExplorer({ model, el }, spec) {
  const controller = new AbortController();
  const root = h("div", { className: `crosslens ${spec.className}` });
  el.appendChild(root);
  const scheduler = frameScheduler(draw);
  /** @type {Shell} */
  const shell = /** @type {any} */ ({
    model, root, signal: controller.signal, common: null, palette: null, ui: {}, state: {}, index: 0,
    offline: Boolean(model.get("_offline")),
    redraw: () => scheduler.request(),
    selectIndex,
    setStatus: (/** @type {string} */ text) => { shell.ui.status.textContent = text; },
  });
  const { offline } = shell; // a saved page: no kernel behind the model
  let pendingTarget = false;
  let stopping = false;
  let rerunning = false;
  let drawn = false;
  shell.syncs = {
    index: traitSync(model, "index", (v) => { shell.index = v; shell.redraw(); }),
    ...spec.syncs(shell),
  };

  function load() {
    const first = shell.common === null;
    shell.common = commonOf(decodePayload(model.get("_payload")));
    if (first) {
      shell.palette = paletteOf(shell.common.meta.palette);
      applyPalette(root, shell.common.meta.palette);
      shell.index = Math.min(Math.max(0, model.get("index") | 0), shell.common.n - 1);
    }
    spec.load(shell, first);
    if (first) build();
    else if (shell.ui.picker) shell.ui.picker.update(shell.common.arrays.x, pickerLabels(shell.common));
    // the kernel answers a target or rerun request with a new payload (or an error)
    pendingTarget = false;
    rerunning = false;
    updateBusy();
    shell.redraw();
  }

  function build() {
    const { ui, common } = shell;
    const { signal } = controller;
    const title = h("div", { className: "xl-title" }, [
      h("span", { className: "xl-title-main", text: spec.title }),
      h("span", { className: "xl-title-sub", text: spec.subtitle(common.meta) }),
    ]);
    const busyParts = [h("span", { className: "xl-spinner", attrs: { "aria-hidden": "true" } }),
      h("span", { text: spec.busyText })];
    const header = [title];
    if (spec.jobs) {
      ui.progressFill = h("span", { className: "xl-progress-fill" });
      ui.progress = h("div", {
        className: "xl-progress", role: "progress",
        attrs: { role: "progressbar", "aria-label": "Progress", "aria-valuemin": 0, "aria-valuemax": 100 },
      }, [ui.progressFill]);
      ui.stop = button("stop-button", "Stop", "Stop the computation (keeps what was computed)", () => {
        stopping = true;
        model.send({ event: "stop" });
        updateBusy();
      });
      ui.rerun = button("rerun-button", "Run again", "Run the stopped computations again", () => {
        rerunning = true;
        model.send({ event: "rerun" });
        updateBusy();
      });
      busyParts.push(ui.progress, ui.stop);
    }
    ui.busy = h("span", { className: "xl-busy", role: "busy", attrs: { "aria-live": "polite", hidden: true } },
      busyParts);
    header.push(ui.busy);
    if (ui.rerun) header.push(ui.rerun);
    ui.status = h("div", { className: "xl-status", role: "status", attrs: { "aria-live": "polite" } });
    ui.summary = h("div", { className: "xl-status xl-summary", role: "summary", attrs: { hidden: true } });
    ui.error = h("div", { className: "xl-error", role: "error", attrs: { role: "alert", hidden: true } });
    root.append(h("div", { className: "xl-header" }, header), ui.status, ui.summary, ui.error);

    if (spec.picker(common)) {
      ui.picker = inputPicker({
        x: common.arrays.x, shape: common.shape, range: common.range, size: THUMB_SIZE, signal,
        labels: pickerLabels(common), onSelect: selectIndex,
      });
      root.appendChild(ui.picker.node);
    }
    const { main, controls } = spec.build(shell);
    root.appendChild(main);
    ui.targetSelect = selectControl({
      role: "target-select", label: "Target class of the selected input", signal, onChange: requestTarget,
    });
    const panel = h("div", { className: "xl-controls" }, controls);
    // meta.target_fixed: why this explorer's targets cannot change (e.g. given counterfactuals)
    const hint = offline ? "needs the live notebook (a saved view)"
      : common.meta.target_fixed || "recomputes this input in the kernel";
    panel.appendChild(controlRow("Target", [ui.targetSelect, h("span", { className: "xl-hint", role: "target-hint", text: hint })]));
    root.appendChild(panel);
    root.appendChild(h("p", { className: "xl-help", role: "help", text: spec.help(common) }));
  }

  /**
   * @param {string} role
   * @param {string} text
   * @param {string} label
   * @param {() => void} onClick
   */
  function button(role, text, label, onClick) {
    const node = h("button", { className: "xl-button", role, text, attrs: { type: "button", "aria-label": label } });
    guardKeys(node, controller.signal);
    node.addEventListener("click", onClick, { signal: controller.signal });
    return node;
  }

  /** @param {number} i */
  function selectIndex(i) {
    if (spec.onIndex) spec.onIndex(shell, i);
    shell.index = i;
    shell.syncs.index.push(i);
    shell.redraw();
  }

  /** @param {string} value */
  function requestTarget(value) {
    pendingTarget = true;
    updateBusy();
    shell.syncs.index.flush();
    model.send({ event: "target", index: shell.index, target: value === "default" ? null : Number(value) });
  }

  function updateBusy() {
    const { ui } = shell;
    if (!ui.busy) return;
    const busy = Boolean(model.get("busy")) && !offline;
    if (!busy) stopping = false;
    ui.busy.hidden = !busy && !pendingTarget;
    root.dataset.busy = String(busy);
    ui.targetSelect.disabled = pendingTarget || offline || Boolean(shell.common.meta.target_fixed);
    const summary = String(model.get("status") || "");
    ui.summary.textContent = summary;
    ui.summary.hidden = !summary;
    if (spec.jobs) {
      const progress = Math.round(100 * Number(model.get("progress") || 0));
      ui.progress.setAttribute("aria-valuenow", String(progress));
      ui.progressFill.style.width = `${progress}%`;
      ui.stop.disabled = stopping || !busy;
      ui.stop.textContent = stopping ? "Stopping…" : "Stop";
      ui.rerun.hidden = offline || busy || pendingTarget || !(spec.stopped && spec.stopped(shell));
      ui.rerun.disabled = rerunning;
    }
  }

  function onError() {
    const message = String(model.get("error") || "");
    if (message) pendingTarget = false;
    if (shell.ui.error) {
      shell.ui.error.textContent = message;
      shell.ui.error.hidden = !message;
    }
    updateBusy();
    shell.redraw(); // resets the target select to the state the payload holds
  }

  /** @param {any} content */
  function onMessage(content) {
    if (content && content.event === "target-done") {
      pendingTarget = false;
      updateBusy();
      shell.redraw();
    }
  }

  function draw() {
    const { common, ui } = shell;
    if (!common) return;
    const n = Math.min(shell.index, common.n - 1);
    const started = performance.now();
    spec.draw(shell, n);
    if (ui.picker) ui.picker.select(n);
    const requested = common.requested[n];
    const target = common.target[n];
    const fallback = defaultLabel(common.meta.default_target);
    const options = [{ value: "default", label: requested < 0 ? `${fallback} (${common.names[target]})` : fallback }];
    common.names.forEach((name, c) => options.push({
      value: String(c), label: c === common.source[n] ? `${name} (predicted)` : name, disabled: c === common.source[n],
    }));
    setOptions(ui.targetSelect, options, requested < 0 ? "default" : String(requested));
    root.dataset.index = String(n);
    // for latency probes (benchmarks/bench_view.py): when the last frame was drawn, and its cost
    Object.assign(root, { crosslensDrawnAt: performance.now(), crosslensDrawMs: performance.now() - started });
    if (!drawn) {
      drawn = true;
      root.dataset.crosslensReady = "true";
    }
  }

  const disconnect = connectModel(model, {
    "change:_payload": load, "change:busy": updateBusy, "change:progress": updateBusy, "change:status": updateBusy,
    "change:error": onError, "msg:custom": onMessage, ...(spec.events || {}),
  }, shell.syncs);
  load();
  onError();

  return () => {
    controller.abort();
    scheduler.cancel();
    disconnect();
    root.remove();
  };
}

/**
 * The picker's button labels: each input, whether it follows a drawing pad, its predicted class.
 * @param {Common} common
 */
function pickerLabels(common) {
  const pads = new Set(common.meta.pad_rows || []);
  return Array.from({ length: common.n }, (_, i) =>
    `Input ${i + 1}${pads.has(i) ? " (drawing pad)" : ""}, predicted ${common.names[common.source[i]]}`);
}

/**
 * "the nearest boundary" -> "Nearest boundary": the default target's option label.
 * @param {string} words
 */
function defaultLabel(words) {
  const text = words.replace(/^the /, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
