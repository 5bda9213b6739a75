"""Development tooling: the local MariaDB cluster and its fault proxy. Not part of the coordinator.

Why a separate top-level package: the coordinator only speaks SQL to its replicas; starting
``mariadbd`` processes and injecting process and network faults is what the tests, the benchmark,
``scripts/cluster.py`` and the ``local`` control backend need around it. Keeping that here (and out
of the wheel, which ships only ``coordinator``) means the product never imports its test harness;
``coordinator.control`` imports this package lazily, only when the ``local`` backend is used.

Modules:

* :mod:`devcluster.cluster`: :class:`~devcluster.cluster.LocalCluster`, N nodes in one directory;
* :mod:`devcluster.node`: one node's layout on disk and its two processes;
* :mod:`devcluster.process`: OS helpers (finding binaries, detached spawning, ``/proc`` state);
* :mod:`devcluster.ports`: port helpers (free ports for tests and scripts, the default layout);
* :mod:`devcluster.protocol`: the proxy's control protocol and persisted fault state, shared by
  both ends;
* :mod:`devcluster.faultproxy` (``python -m devcluster.faultproxy``) and
  :mod:`devcluster.links`: the proxy process and its data path.
"""
