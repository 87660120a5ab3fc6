"""NVML parsing in `gpu_jobs.gpuinfo`, tested on recorded readings of an H100 (fixture shape from
NVIDIA's documented API; see the fixture's `_provenance`) through a pynvml stand-in."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from gpu_jobs import gpuinfo
from gpu_jobs.gpuinfo import CPU_ONLY, GpuMonitor, Samples, identity, summarise

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "gpu" / "nvml_h100_80gb_hbm3.json"
MIB = 1024 * 1024


class RecordedNvml:
    """Answers pynvml's calls from the fixture; each utilisation read advances one sample."""

    def __init__(self, data: dict[str, Any], *, as_bytes: bool = False, unsupported: tuple[str, ...] = ()):
        self.data = data
        self.as_bytes = as_bytes
        self.unsupported = set(unsupported)
        self.index = 0
        self.lock = threading.Lock()
        self.fail_sample_at: int | None = None

    def _s(self, value: str) -> str | bytes:
        return value.encode() if self.as_bytes else value

    def _check(self, name: str) -> None:
        if name in self.unsupported:
            raise pynvml.NVMLError_NotSupported(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def _device(self, handle: int) -> dict[str, Any]:
        device: dict[str, Any] = self.data["devices"][handle]
        return device

    def nvmlDeviceGetCount(self) -> int:
        return int(self.data["device_count"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str | bytes:
        return self._s(self._device(handle)["name"])

    def nvmlDeviceGetUUID(self, handle: int) -> str | bytes:
        return self._s(self._device(handle)["uuid"])

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        return self._s(self.data["driver_version"])

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._check("cuda")
        return int(self.data["cuda_driver_version"])

    def nvmlDeviceGetPciInfo(self, handle: int) -> SimpleNamespace:
        self._check("pci")
        return SimpleNamespace(busId=self._s(self._device(handle)["pci_bus_id"]))

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        self._check("cc")
        major, minor = self._device(handle)["compute_capability"]
        return major, minor

    def _current(self, handle: int) -> dict[str, Any]:
        samples = self._device(handle)["samples"]
        sample: dict[str, Any] = samples[min(self.index, len(samples) - 1)]
        return sample

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        with self.lock:
            if self.fail_sample_at is not None and self.index == self.fail_sample_at:
                self.index += 1
                raise pynvml.NVMLError_Unknown(pynvml.NVML_ERROR_UNKNOWN)
            self.index += 1
            sample = self._current(handle)
        return SimpleNamespace(gpu=sample["gpu"], memory=sample["memory"])

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        sample = self._current(handle)
        total = self._device(handle)["memory"]["total"]
        return SimpleNamespace(total=total, used=sample["used"], free=sample["free"])


@pytest.fixture
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def test_identity_of_an_h100_reads_name_uuid_driver_and_memory(recorded: dict[str, Any]) -> None:
    """The device identity a job records: what it is, which driver, how much memory."""
    info = identity(RecordedNvml(recorded), 0)
    assert info == {
        "available": True,
        "device": "cuda",
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-9a6b5c1e-27d4-3f08-8e1b-6c2f4d7a0b93",
        "driver": "550.54.15",
        "memory_total_mib": 81559,
        "pci_bus_id": "00000000:18:00.0",
        "compute_capability": "9.0",
        "cuda_driver_version": "12.4",
    }


def test_identity_accepts_bytes_from_older_pynvml(recorded: dict[str, Any]) -> None:
    """Older pynvml releases return bytes for names and versions; they are decoded."""
    info = identity(RecordedNvml(recorded, as_bytes=True), 0)
    assert info["name"] == "NVIDIA H100 80GB HBM3"
    assert info["driver"] == "550.54.15"
    assert info["pci_bus_id"] == "00000000:18:00.0"


def test_identity_leaves_out_what_the_driver_does_not_support(recorded: dict[str, Any]) -> None:
    """NVMLError_NotSupported on optional queries never fails the job; the field is omitted."""
    info = identity(RecordedNvml(recorded, unsupported=("pci", "cc", "cuda")), 0)
    assert "pci_bus_id" not in info and "compute_capability" not in info and "cuda_driver_version" not in info
    assert info["name"] == "NVIDIA H100 80GB HBM3"


def test_summary_of_the_recorded_samples_has_peak_memory_and_utilisation(recorded: dict[str, Any]) -> None:
    """Peak memory is the maximum sampled, not the last reading; utilisation max and mean."""
    samples = Samples()
    for reading in recorded["devices"][0]["samples"]:
        samples.add(reading["gpu"], reading["memory"], reading["used"])
    report = summarise({"available": True}, samples, torch_peak_bytes=1536 * MIB)
    used = [r["used"] for r in recorded["devices"][0]["samples"]]
    utils = [r["gpu"] for r in recorded["devices"][0]["samples"]]
    assert report["peak_memory_used_mib"] == round(max(used) / MIB) == 2319
    assert report["memory_used_at_start_mib"] == 531
    assert report["peak_memory_used_mib"] > round(used[-1] / MIB)
    assert report["utilization_max_pct"] == 99
    assert report["utilization_mean_pct"] == round(sum(utils) / len(utils), 1)
    assert report["torch_peak_allocated_mib"] == 1536
    assert report["samples"] == len(used)


def test_monitor_samples_in_a_thread_while_the_job_runs(recorded: dict[str, Any]) -> None:
    """The monitor's thread keeps sampling during the job and catches the peak."""
    nvml = RecordedNvml(recorded)
    total_samples = len(recorded["devices"][0]["samples"])
    with GpuMonitor(nvml, interval_s=0.001) as monitor:
        done = threading.Event()
        while not done.wait(0.005):
            if nvml.index >= total_samples:
                done.set()
    report = monitor.report
    assert report["name"] == "NVIDIA H100 80GB HBM3"
    assert report["samples"] >= total_samples
    assert report["peak_memory_used_mib"] == 2319
    assert report["utilization_max_pct"] == 99


def test_a_failed_sample_is_counted_not_fatal(recorded: dict[str, Any]) -> None:
    """A driver hiccup while sampling is recorded as sample_errors; the job goes on."""
    nvml = RecordedNvml(recorded)
    nvml.fail_sample_at = 2
    with GpuMonitor(nvml, interval_s=0.001) as monitor:
        while nvml.index < 6:
            threading.Event().wait(0.002)
    assert monitor.report["sample_errors"] == 1
    assert monitor.report["samples"] >= 5
    assert monitor.report["name"] == "NVIDIA H100 80GB HBM3"


def test_cuda_visible_devices_uuid_selects_the_device(
    recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job pinned with CUDA_VISIBLE_DEVICES=GPU-<uuid> reports that device."""
    second = dict(recorded["devices"][0], name="NVIDIA H100 80GB HBM3", uuid="GPU-second")
    recorded = dict(recorded, device_count=2, devices=[recorded["devices"][0], second])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-second")
    assert gpuinfo.device_index(RecordedNvml(recorded)) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert gpuinfo.device_index(RecordedNvml(recorded)) == 1
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gpuinfo.device_index(RecordedNvml(recorded)) == 0


def test_without_an_nvidia_driver_the_job_records_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NVML library / driver: exactly {"available": false, "device": "cpu"}."""

    def no_library() -> None:
        raise pynvml.NVMLError_LibraryNotFound(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    assert gpuinfo.load_nvml() is None
    with GpuMonitor() as monitor:
        pass
    assert monitor.report == CPU_ONLY


def test_a_driver_that_fails_identity_falls_back_to_cpu_with_the_error(recorded: dict[str, Any]) -> None:
    """A broken driver must not fail the job: the report says cpu and carries the NVML error."""
    nvml = RecordedNvml(recorded)

    def broken(_handle: int) -> str:
        raise pynvml.NVMLError_GpuIsLost(pynvml.NVML_ERROR_GPU_IS_LOST)

    nvml.nvmlDeviceGetName = broken  # type: ignore[method-assign,assignment]
    with GpuMonitor(nvml) as monitor:
        pass
    assert monitor.report["available"] is False
    assert monitor.report["device"] == "cpu"
    assert "GpuIsLost" in monitor.report["nvml_error"]
