"""Provenance: the device line names the cores a process may use (taskset, cpusets)."""

import subprocess
import sys

from ecgjax.io import describe_device


def test_describe_device_names_usable_cores():
    cpu = {"platform": "cpu", "kind": "cpu", "count": 1, "cpu_count": 2}
    assert describe_device({"device": cpu}) == "1 x cpu (2 CPU cores)"
    assert describe_device({"device": {**cpu, "cpu_affinity": 2}}) == "1 x cpu (2 CPU cores)"
    assert describe_device({"device": {**cpu, "cpu_affinity": 1}}) == "1 x cpu (1 of 2 CPU cores)"
    gpu = {"platform": "gpu", "kind": "NVIDIA H100 80GB HBM3", "count": 1, "cpu_count": 16, "cpu_affinity": 16}
    assert describe_device({"device": gpu}) == "1 x NVIDIA H100 80GB HBM3"


def test_environment_info_sees_a_pinned_process():
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from ecgjax.io import environment_info; print(environment_info()['device']['cpu_affinity'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[-1] == "1"
