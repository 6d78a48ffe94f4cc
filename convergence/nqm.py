"""The noisy quadratic model (NQM): the standard analytic model of batch size and staleness.

Zhang, Li, Nado, Martens, Sachdeva, Dahl, Shallue and Grosse, "Which algorithmic choices matter
at which batch sizes? Insights from a noisy quadratic model", NeurIPS 2019: a loss
``L(theta) = 1/2 sum_i h_i theta_i**2`` whose minibatch gradient is ``h_i theta_i + eps_i`` with
``eps_i`` zero-mean noise of variance ``c_i / B`` (``B`` the global batch). With ``h_i = c_i``
(noise covariance equal to the curvature, as near a minimum of a log-likelihood) and
``h_i = 1 / i`` it reproduces how steps-to-target scale with batch size in real networks.

The optimiser is gradsync's: SGD with heavy-ball momentum as PyTorch writes it (``v <- beta v +
g``, ``theta <- theta - lr v``), the gradient ``d`` steps old under ``delayed`` (computed at
``theta_{t-d}``; the first ``d`` steps make no update, as the executor's ``delayed`` does), so
``d = 0`` is every synchronous strategy. Per coordinate the dynamics are linear in the state
``x_t = (theta_t, theta_{t-1}, ..., theta_{t-d}, v_t)``::

    x_{t+1} = A x_t + b eps_t,    E[x x^T]_{t+1} = A E[x x^T]_t A^T + (c / B) b b^T

so the expected loss has an exact recurrence (:func:`expected_loss`), which the Monte-Carlo runs
(:func:`sample_losses`) must match within their spread; for ``d = 0`` without momentum it has a
closed form (:func:`closed_form_loss`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vocab.errors import SpecError

#: An expected loss this many times the starting loss has diverged; the recurrence stops there.
DIVERGED = 1e8


@dataclass(frozen=True)
class NoisyQuadratic:
    """A noisy quadratic: curvatures ``h``, gradient-noise variances ``c`` per sample, start.

    ``theta0`` is the starting value of every coordinate (the expected loss at the start is
    ``1/2 sum h theta0**2``).
    """

    h: tuple[float, ...]
    c: tuple[float, ...]
    theta0: float = 1.0

    def __post_init__(self) -> None:
        if not self.h or len(self.h) != len(self.c):
            raise SpecError("nqm.c", len(self.c), f"one noise variance per curvature ({len(self.h)})")
        if min(self.h) <= 0 or min(self.c) < 0 or not all(map(math.isfinite, self.h + self.c)):
            raise SpecError("nqm.h", min(self.h), "curvatures > 0 and noise variances >= 0")

    @classmethod
    def standard(cls, dims: int = 100, theta0: float = 1.0) -> NoisyQuadratic:
        """Zhang et al.'s spectrum: ``h_i = c_i = 1 / i`` for ``i = 1..dims``."""
        if dims < 1:
            raise SpecError("dims", dims, "at least one dimension")
        h = tuple(1.0 / i for i in range(1, dims + 1))
        return cls(h, h, theta0)

    @property
    def initial_loss(self) -> float:
        """Expected (and actual) loss at the start."""
        return 0.5 * sum(self.h) * self.theta0 ** 2

    def noise_floor(self, lr: float, batch: int) -> float:
        """Steady-state expected loss of plain SGD (``d = 0``, no momentum): the loss no number
        of steps gets below at this learning rate and batch."""
        h, c = np.array(self.h), np.array(self.c)
        return float(0.5 * np.sum(h * lr * c / (batch * h * (2.0 - lr * h))))


@dataclass(frozen=True)
class Optimiser:
    """SGD with momentum, learning rate ``lr``, global batch, and staleness ``d``."""

    lr: float
    batch: int
    momentum: float = 0.0
    staleness: int = 0

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SpecError("lr", self.lr, "a learning rate > 0")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise SpecError("batch", self.batch, "a global batch >= 1")
        if not 0.0 <= self.momentum < 1.0:
            raise SpecError("momentum", self.momentum, "a momentum in [0, 1)")
        if isinstance(self.staleness, bool) or not isinstance(self.staleness, int) \
                or self.staleness < 0:
            raise SpecError("staleness", self.staleness, "a whole number of steps >= 0")


def transition(h: np.ndarray, opt: Optimiser) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` of the linear dynamics, one ``(n, n)`` matrix per coordinate, ``n = d + 2``."""
    d, n = opt.staleness, opt.staleness + 2
    a = np.zeros((len(h), n, n))
    a[:, 0, 0] = 1.0
    a[:, 0, d] += -opt.lr * h            # theta_{t+1} = theta_t - lr (beta v_t + h theta_{t-d})
    a[:, 0, n - 1] = -opt.lr * opt.momentum
    for k in range(1, d + 1):            # the history shifts by one step
        a[:, k, k - 1] = 1.0
    a[:, n - 1, d] += h                  # v_{t+1} = beta v_t + h theta_{t-d}
    a[:, n - 1, n - 1] = opt.momentum
    b = np.zeros(n)
    b[0], b[n - 1] = -opt.lr, 1.0
    return a, b


def expected_loss(nqm: NoisyQuadratic, opt: Optimiser, steps: int) -> np.ndarray:
    """Expected loss after each of ``0..steps`` steps (``steps + 1`` values), exactly.

    The first ``d`` steps of ``delayed`` make no update (the gradients are in flight), so the
    loss stays at its start for them.
    """
    h, c = np.asarray(nqm.h), np.asarray(nqm.c)
    a, b = transition(h, opt)
    n = opt.staleness + 2
    x0 = np.zeros((len(h), n))
    x0[:, : opt.staleness + 1] = nqm.theta0
    moment = np.einsum("di,dj->dij", x0, x0)
    kick = np.einsum("d,i,j->dij", c / opt.batch, b, b)
    out = np.empty(steps + 1)
    out[0] = 0.5 * float(h @ moment[:, 0, 0])
    held = min(opt.staleness, steps)
    out[1: held + 1] = out[0]
    a_t = a.transpose(0, 2, 1)
    for t in range(held + 1, steps + 1):
        moment = a @ moment @ a_t + kick
        out[t] = 0.5 * float(h @ moment[:, 0, 0])
        if not out[t] < DIVERGED * out[0]:     # diverged (or overflowed): say so, stop
            out[t:] = math.inf
            break
    return out


def sample_losses(nqm: NoisyQuadratic, opt: Optimiser, steps: int, seeds: int,
                  seed: int = 0) -> np.ndarray:
    """Loss after each of ``0..steps`` steps for ``seeds`` independent runs: ``(seeds, steps+1)``.

    The gradient noise is Gaussian with the model's variance; one ``numpy`` generator per call.
    """
    if seeds < 1:
        raise SpecError("seeds", seeds, "at least one run")
    rng = np.random.default_rng(seed)
    h, c = np.asarray(nqm.h), np.asarray(nqm.c)
    d = opt.staleness
    theta = np.full((seeds, len(h)), nqm.theta0)
    history = [theta.copy() for _ in range(d)]     # theta_{t-d} .. theta_{t-1}
    v = np.zeros_like(theta)
    sd = np.sqrt(c / opt.batch)
    out = np.empty((seeds, steps + 1))
    out[:, 0] = 0.5 * (theta ** 2) @ h
    for t in range(1, steps + 1):
        grad_at = history[0] if d else theta
        grad = h * grad_at + sd * rng.standard_normal(theta.shape)
        if d:
            history = history[1:] + [theta.copy()]
        if t > d:                                # delayed: no update while gradients fill
            v = opt.momentum * v + grad
            theta = theta - opt.lr * v
        out[:, t] = 0.5 * (theta ** 2) @ h
    return out


def closed_form_loss(nqm: NoisyQuadratic, lr: float, batch: int, steps: int) -> np.ndarray:
    """Expected loss of plain SGD (``d = 0``, no momentum) after ``0..steps`` steps:
    ``m_t = (1 - lr h)^(2t) (theta0^2 - m_inf) + m_inf`` per coordinate,
    ``m_inf = lr c / (B h (2 - lr h))``."""
    h, c = np.asarray(nqm.h), np.asarray(nqm.c)
    m_inf = lr * c / (batch * h * (2.0 - lr * h))
    t = np.arange(steps + 1)[:, None]
    moments = (1.0 - lr * h) ** (2 * t) * (nqm.theta0 ** 2 - m_inf) + m_inf
    return 0.5 * moments @ h


def steps_to_target(losses: np.ndarray, target: float) -> np.ndarray | int | None:
    """First step at which the loss is at or below ``target``: per row of a 2-D array (-1 for a
    row that never gets there), or for one curve (None when it never does)."""
    losses = np.asarray(losses)
    reached = losses <= target
    if losses.ndim == 1:
        return int(np.argmax(reached)) if reached.any() else None
    first = np.argmax(reached, axis=1)
    return np.where(reached.any(axis=1), first, -1)


def stable_lr_bound(h_max: float, staleness: int) -> float:
    """The largest stable ``lr`` of momentum-free gradient descent with delay ``d`` on
    curvature ``h_max``: ``2 sin(pi / (2 (2d + 1))) / h_max`` (the classical result for
    ``x_{t+1} = x_t - a x_{t-d}``: stable iff ``a < 2 sin(pi / (4d + 2))``)."""
    return 2.0 * math.sin(math.pi / (2 * (2 * staleness + 1))) / h_max
