"""The batched per-row optimiser that the search-based methods share.

N searches run in one batch, each on its own row of a parameter tensor (a latent code, a
perturbation, the pixels themselves). Every step evaluates the rows still running, asks the
method which of them are finished, records what the classifier saw, and steps the others;
a finished row stays frozen, so every row follows exactly the trajectory it would follow
alone [derived]. The running rows are kept compact (finished rows are dropped from the batch
rather than masked), so a step costs what its running rows cost.

Used by :mod:`crosslens.kernel_side.methods.counterfactuals` (Adam on a latent code or on
the pixels, Dombrowski et al. 2024) and :mod:`crosslens.kernel_side.methods.axai` (projected
gradient steps of an attack, Rahnama and Tseng 2021).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from .._checks import check_int

__all__ = ["RowAdam", "RowGradientStep", "Trace", "check_callbacks", "search"]

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults
ADAM_EPS = 1e-8
_INITIAL_RECORDS = 16  # record slots allocated at first; doubled when full


class RowAdam:
    """``torch.optim.Adam`` (weight decay 0) on the rows of a compact batch.

    The running rows move in lockstep (a row that stops never restarts), so one step count
    serves them all; :meth:`keep` drops the moments of rows that stopped.
    """

    def __init__(self, lr: float):
        self.lr = lr
        self.exp_avg: torch.Tensor | None = None
        self.exp_avg_sq: torch.Tensor | None = None

    def step(self, params: torch.Tensor, grad: torch.Tensor, count: int) -> torch.Tensor:
        """The rows after step ``count`` (from 1) on ``grad``; ``params`` is left unchanged."""
        beta1, beta2 = ADAM_BETAS
        if self.exp_avg is None:
            self.exp_avg, self.exp_avg_sq = torch.zeros_like(params), torch.zeros_like(params)
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (self.exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** count)).add_(ADAM_EPS)
        return params.addcdiv(self.exp_avg, denom, value=-self.lr / (1 - beta1 ** count))

    def keep(self, rows: torch.Tensor) -> None:
        """Keep the moments of ``rows`` (a bool mask over the current batch) only."""
        if self.exp_avg is not None:
            self.exp_avg, self.exp_avg_sq = self.exp_avg[rows], self.exp_avg_sq[rows]


class RowGradientStep:
    """Projected gradient descent's step on each row: ``-lr * g / ||g||_2`` (``norm="l2"``)
    or ``-lr * sign(g)`` (``norm="linf"``); it keeps no state between steps."""

    def __init__(self, lr: float, norm: str = "l2"):
        self.lr, self.norm = lr, norm

    def step(self, params: torch.Tensor, grad: torch.Tensor, count: int) -> torch.Tensor:
        if self.norm == "linf":
            return params - self.lr * grad.sign()
        return params - self.lr * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def keep(self, rows: torch.Tensor) -> None:
        """Nothing to drop: the step has no state."""


@dataclass(frozen=True)
class Trace:
    """What a :func:`search` recorded, per row, on the device of the search.

    Fields:
        steps: (N,) int64, the optimiser steps each row took before it stopped.
        record_steps: (N, S) int64, the step of each record; a row that stopped early repeats
            its last record, so the last one is always where the row ended.
        shown: (N, S, *input_shape) what the classifier saw; probs: (N, S, C) its class
            probabilities; params: (N, S, P) the optimised rows, or None when not kept.
        interrupted: True when ``stop`` or Ctrl-C ended the search before every row finished.
    """

    steps: torch.Tensor
    record_steps: torch.Tensor
    shown: torch.Tensor
    probs: torch.Tensor
    params: torch.Tensor | None
    interrupted: bool


class _Recorder:
    """Records written straight into growing (N, S, ...) buffers, one column per record.

    Running rows are written at the next shared column; a row that stops gets its final
    state appended after its own last record (unless that record is it already), and later
    records skip it. :meth:`trace` forward-fills each row past its end.
    """

    def __init__(self, count: int, device: torch.device):
        self.count = count
        self.device = device
        self.columns = 0  # records taken of the running rows
        self.length = torch.zeros(count, dtype=torch.long, device=device)  # records per row
        self.steps = torch.zeros(count, dtype=torch.long, device=device)
        self.buffers: dict[str, torch.Tensor] = {}

    def _write(self, rows: torch.Tensor, columns: torch.Tensor, needed: int, fields: dict[str, torch.Tensor]) -> None:
        """Write ``fields`` of ``rows`` at ``columns``, growing the buffers to ``needed`` columns."""
        for name, values in fields.items():
            buffer = self.buffers.get(name)
            if buffer is None:
                buffer = values.new_zeros(self.count, max(_INITIAL_RECORDS, needed), *values.shape[1:])
            elif buffer.shape[1] < needed:
                grown = buffer.new_zeros(self.count, max(2 * buffer.shape[1], needed), *buffer.shape[2:])
                grown[:, : buffer.shape[1]] = buffer
                buffer = grown
            buffer[rows, columns] = values
            self.buffers[name] = buffer

    def record(self, rows: torch.Tensor, step: int, fields: dict[str, torch.Tensor]) -> None:
        """Record the running ``rows`` at ``step``."""
        columns = torch.full_like(rows, self.columns)
        self._write(rows, columns, self.columns + 1, dict(fields, record_steps=torch.full_like(rows, step)))
        self.columns += 1
        self.length[rows] = self.columns
        self.steps[rows] = step

    def finish(self, rows: torch.Tensor, step: int, fields: dict[str, torch.Tensor]) -> None:
        """``rows`` stop at ``step``, in the state ``fields``: appended unless just recorded."""
        fresh = (self.length[rows] == 0) | (self.steps[rows] != step)
        if fresh.any():
            rows = rows[fresh]
            columns = self.length[rows]
            self._write(rows, columns, int(columns.max()) + 1, dict(
                {name: values[fresh] for name, values in fields.items()}, record_steps=torch.full_like(rows, step)))
            self.length[rows] += 1
            self.steps[rows] = step

    def trace(self, interrupted: bool) -> Trace:
        columns = int(self.length.max())
        last = torch.minimum(torch.arange(columns, device=self.device)[None], (self.length - 1)[:, None])
        every = torch.arange(self.count, device=self.device)[:, None]
        filled = {name: buffer[every, last] for name, buffer in self.buffers.items()}
        return Trace(steps=self.steps.clone(), record_steps=filled["record_steps"], shown=filled["shown"],
                     probs=filled["probs"], params=filled.get("params"), interrupted=interrupted)


def check_callbacks(stop, on_progress, progress_every) -> None:
    """``stop`` offers ``is_set()``; ``on_progress`` is callable; ``progress_every`` is a positive int."""
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise TypeError(f"stop must offer is_set() (e.g. a threading.Event), got {type(stop).__name__}")
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable, got {type(on_progress).__name__}")
    check_int(progress_every, "progress_every", minimum=1)


def search(
    start: torch.Tensor,
    render: Callable[[torch.Tensor], torch.Tensor],
    classifier: Callable[[torch.Tensor], torch.Tensor],
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    finished: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: RowAdam,
    *,
    max_steps: int,
    record_every: int = 1,
    keep_params: bool = False,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
    stop=None,
    on_progress: Callable[[Trace], None] | None = None,
    progress_every: int = 10,
    progress: bool = False,
    desc: str = "search",
) -> Trace:
    """Run N searches in one batch, each row stopping on its own.

    Arguments:
        start: (N, P) the starting rows (not changed).
        render: ``render(params) -> inputs`` (n, *input_shape), differentiable: what the
            classifier sees for the given rows (a decoder, ``x + d``, or the identity).
        classifier: ``classifier(inputs) -> logits`` (n, C).
        loss: ``loss(logits, rows) -> (n,)``, each row's loss to minimise; ``rows`` are the
            rows' indices in the batch of N.
        finished: ``finished(probs, rows) -> (n,) bool``: rows that stop before this step.
        optimizer: steps the rows (:class:`RowAdam`).
        max_steps: the most steps per row; record_every: record every k-th step (the end of
            each row is always recorded); keep_params: record the rows themselves too.
        project: applied to the rows after each step (e.g. a clip or a norm ball).
        stop: an object with ``is_set()``; once set, the rows end where they are
            (``interrupted``); Ctrl-C does the same.
        on_progress: called with the partial :class:`Trace` every ``progress_every`` steps.
        progress: show a tqdm bar titled ``desc``.

    Call it under ``torch.no_grad()``: gradients are taken only inside.
    """
    device = start.device
    recorder = _Recorder(len(start), device)
    rows = torch.arange(len(start), device=device)
    params = start.detach().clone()
    state: tuple | None = None  # the running rows as last evaluated: (rows, step, fields)
    bar = tqdm(total=max_steps, desc=desc, disable=not progress)
    interrupted = False
    try:
        for step in range(max_steps + 1):
            with torch.enable_grad():
                point = params.requires_grad_(True)
                shown = render(point)
                logits = classifier(shown)
            probs = logits.detach().softmax(1)
            fields = {"shown": shown.detach(), "probs": probs}
            if keep_params:
                fields["params"] = point.detach()
            state = (rows, step, fields)
            if step % record_every == 0:
                recorder.record(rows, step, fields)
            going = ~finished(probs, rows) if step < max_steps else torch.zeros_like(rows, dtype=torch.bool)
            all_going = bool(going.all())
            if not all_going:
                recorder.finish(rows[~going], step, {name: values[~going] for name, values in fields.items()})
                if not going.any():
                    break
            if on_progress is not None and step and step % progress_every == 0:
                on_progress(recorder.trace(interrupted=False))
            if stop is not None and stop.is_set():
                interrupted = True
                break
            with torch.enable_grad():
                losses = loss(logits, rows)
                (grad,) = torch.autograd.grad((losses if all_going else losses[going]).sum(), point)
            params = point.detach()
            if not all_going:
                state = (rows[going], step, {name: values[going] for name, values in fields.items()})
                rows, params, grad = state[0], params[going], grad[going]
                optimizer.keep(going)
            params = optimizer.step(params, grad, step + 1)
            if project is not None:
                params = project(params)
            bar.update(1)
            if progress:
                bar.set_postfix(running=len(rows))
    except KeyboardInterrupt:
        if state is None:  # nothing evaluated yet: no partial result to give
            raise
        interrupted = True
    finally:
        bar.close()
    if state is not None:  # rows still running end where they were last evaluated (finished rows are kept)
        recorder.finish(*state)
    return recorder.trace(interrupted)

