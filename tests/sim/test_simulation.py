"""Deterministic simulation of the core: many seeds, invariants after every step.

Run more: ``SIM_SEEDS=2000 SIM_STEPS=500 pytest tests/sim``. Replay one seed:
``SIM_SEED=123 pytest tests/sim -k replay`` (prints the whole trace).
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from tests.sim.model import SHELL_QUIRKS, SimConfig, run_seed

SEEDS = int(os.environ.get("SIM_SEEDS", "40"))
STEPS = int(os.environ.get("SIM_STEPS", "200"))

# (n, t, mode): every mode, every n from 3 to 7, t up to floor((n-1)/2).
COMBOS = [
    (3, 1, "cabinet"),
    (4, 1, "cabinet"),
    (5, 2, "cabinet"),
    (6, 2, "cabinet"),
    (7, 3, "cabinet"),
    (5, 1, "majority"),
    (7, 2, "majority"),
    (3, 1, "all"),
]


def _run_many(cfg: SimConfig, seeds: range) -> tuple[list[str], int, int]:
    failures, acked, stuck = [], 0, 0
    for seed in seeds:
        res = run_seed(seed, cfg)
        acked += res.stats["acked"]
        stuck += res.stuck is not None
        if res.violation is not None:
            failures.append(res.report())
    return failures, acked, stuck


@pytest.mark.parametrize(("n", "t", "mode"), COMBOS, ids=[f"n{n}-t{t}-{m}" for n, t, m in COMBOS])
def test_invariants_hold_over_many_seeds(n: int, t: int, mode: str) -> None:
    cfg = SimConfig(n=n, t=t, mode=mode, steps=STEPS)
    failures, acked, stuck = _run_many(cfg, range(SEEDS))
    print(f"n={n} t={t} {mode}: {SEEDS} seeds x {STEPS} steps, {acked} writes acknowledged, "
          f"{stuck} seeds stuck with no rebuild source (known liveness limit)")
    assert not failures, "\n\n".join(failures[:3])
    if mode != "all":
        assert acked > SEEDS, "the workload should acknowledge writes (the simulation is not vacuous)"
    assert stuck <= max(2, SEEDS // 10), f"{stuck} of {SEEDS} seeds never converged"


def test_same_seed_same_trace() -> None:
    cfg = SimConfig(n=5, t=2, mode="cabinet", steps=300)
    for seed in (1, 7, 42):
        a, b = run_seed(seed, cfg), run_seed(seed, cfg)
        assert a.trace == b.trace
        assert a.digest == b.digest
        assert a.stats == b.stats
    assert run_seed(1, cfg).digest != run_seed(2, cfg).digest


def test_replay_seed_from_env() -> None:
    """``SIM_SEED=… SIM_N=… SIM_T=… SIM_MODE=…``: replay one seed and print its trace."""
    seed = int(os.environ.get("SIM_SEED", "5"))
    cfg = SimConfig(n=int(os.environ.get("SIM_N", "3")), t=int(os.environ.get("SIM_T", "1")),
                    mode=os.environ.get("SIM_MODE", "cabinet"), steps=STEPS)
    res = run_seed(seed, cfg)
    if os.environ.get("SIM_SEED"):
        print("\n".join(res.trace))
    assert res.violation is None, res.report()


# --- the checker can fail: deliberate bugs in the model are caught ------------------------


@pytest.mark.parametrize(
    ("bug", "n", "t", "mode"),
    [
        ("ack_before_quorum", 3, 1, "cabinet"),
        ("ack_before_quorum", 5, 2, "majority"),
        ("reuse_ts_after_restart", 3, 1, "cabinet"),
        ("skip_catchup", 5, 2, "cabinet"),
    ],
)
def test_checker_catches_injected_bug(bug: str, n: int, t: int, mode: str) -> None:
    cfg = SimConfig(n=n, t=t, mode=mode, steps=300, bugs=frozenset({bug}))
    for seed in range(60):
        res = run_seed(seed, cfg)
        if res.violation is not None:
            print(f"{bug}: caught at seed {seed}: {res.violation[:200]}")
            assert run_seed(seed, cfg).violation == res.violation  # and it replays
            return
    pytest.fail(f"the invariant checker did not catch the injected bug {bug!r} in 60 seeds")


# --- known issues of the current shell, reproduced by the faithful model --------------------
# Each quirk mirrors code in coordinator/ as it is written today; the default model runs the
# corrected behaviour. These tests pin a seed on which the faithful model breaks an invariant,
# so the finding stays reproducible (and the test shows when the model is changed).

KNOWN = [
    # replication.applied_map counts an errant (needs_rebuild) replica at its errant
    # applied_ts: after a coordinator restart reuses never-committed timestamps below it,
    # a write is acknowledged while only the leader holds it (I4, then I2 on a leader loss).
    ("commit_counts_errant", 3, 1, "cabinet", 3, "I4", {}),
    ("commit_counts_errant", 5, 1, "majority", 135, "I4", {}),
    # catchup.rebuild copies the leader while its last batch is in doubt (committed there,
    # not logged); failover re-queues that batch, so the copy holds an entry that is never
    # in the log, at a position errant detection never looks at again: the replicas differ
    # after quiescence and the re-queued writes exist twice on the copies (I1).
    ("rebuild_trusts_source", 7, 2, "majority", 46, "I1", {"memory_log_entries": 8, "drop_p": 0.03}),
]


@pytest.mark.parametrize(("quirk", "n", "t", "mode", "seed", "kind", "extra"), KNOWN)
def test_known_shell_issue_reproduces(quirk: str, n: int, t: int, mode: str, seed: int, kind: str,
                                      extra: dict[str, object]) -> None:
    assert quirk in SHELL_QUIRKS
    base = SimConfig(n=n, t=t, mode=mode, steps=300, **extra)  # type: ignore[arg-type]
    res = run_seed(seed, replace(base, shell_quirks=frozenset({quirk})))
    assert res.violation is not None and res.violation.startswith(kind), res.violation
    print(res.report(40))
    corrected = run_seed(seed, base)
    assert corrected.violation is None, corrected.report()
