"""The machine a run is on (raygm/core/machine.py)."""
from raygm.core import machine


def test_two_cpus_sold_under_one_name_are_two_machines(monkeypatch):
    def on(model: str):
        info = {"model name": "AMD EPYC", "cpu family": "25", "model": model,
                "flags": "fpu avx512f avx512_bf16"}
        monkeypatch.setattr(machine, "cpuinfo", lambda key: info.get(key, ""))
        return machine.cpu_description()

    assert on("17").startswith("AMD EPYC (cpu family 25, model 17, AVX-512 BF16), ")
    assert on("17") != on("1")


def test_a_machine_without_cpuinfo_is_still_described(monkeypatch):
    monkeypatch.setattr(machine, "cpuinfo", lambda key: "")
    assert "(no native bf16)" in machine.cpu_description()
