"""Which GPU a job ran on and how hard it used it, read through NVML (`nvidia-ml-py`).

`GpuMonitor` reads the device's identity when the job starts and samples utilisation and
memory in a background thread while it runs, so the report carries the PEAK memory and the
utilisation over the job, not one reading at the end. Without an NVIDIA driver (or NVML) it
reports `{"available": false, "device": "cpu"}`.

Everything goes through an `nvml` object with pynvml's function names, so the parsing is
tested against recorded readings (tests/fixtures/gpu/) without a GPU.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024
CPU_ONLY: dict[str, Any] = {"available": False, "device": "cpu"}


def _text(value: Any) -> str:
    """pynvml returns str in recent releases and bytes in older ones."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def load_nvml() -> Any | None:
    """The pynvml module, initialised; None when there is no NVIDIA driver here."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded / ... : no usable GPU
        return None
    return pynvml


def device_index(nvml: Any) -> int:
    """The NVML index of the device this process uses (honours CUDA_VISIBLE_DEVICES)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if not visible:
        return 0
    if visible.isdigit():
        return int(visible)
    if visible.startswith(("GPU-", "MIG-")):
        for index in range(int(nvml.nvmlDeviceGetCount())):
            if _text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(index))) == visible:
                return index
    return 0


def identity(nvml: Any, handle: Any) -> dict[str, Any]:
    """Static facts about the device: what it is and which driver runs it."""
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    info: dict[str, Any] = {
        "available": True,
        "device": "cuda",
        "name": _text(nvml.nvmlDeviceGetName(handle)),
        "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
        "driver": _text(nvml.nvmlSystemGetDriverVersion()),
        "memory_total_mib": round(int(memory.total) / MIB),
    }
    optional = {
        "pci_bus_id": lambda: _text(nvml.nvmlDeviceGetPciInfo(handle).busId),
        "compute_capability": lambda: ".".join(
            str(x) for x in nvml.nvmlDeviceGetCudaComputeCapability(handle)
        ),
        "cuda_driver_version": lambda: _cuda_version(int(nvml.nvmlSystemGetCudaDriverVersion())),
    }
    for key, read in optional.items():
        with contextlib.suppress(Exception):  # not supported on this device/driver: leave it out
            info[key] = read()
    return info


_COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}


def _enabled(value: Any) -> str:
    return "enabled" if int(value) else "disabled"


def posture(nvml: Any, handle: Any) -> dict[str, Any]:
    """What attestation appraises beyond identity: ECC, error counters, MIG, modes, clocks, power.

    Every value is what the driver reports (no signature unless the GPU is in CC mode); a
    reading the device or driver does not support is left out rather than guessed.
    """
    readers: dict[str, Any] = {
        "serial": lambda: _text(nvml.nvmlDeviceGetSerial(handle)),
        "board_part_number": lambda: _text(nvml.nvmlDeviceGetBoardPartNumber(handle)),
        "vbios": lambda: _text(nvml.nvmlDeviceGetVbiosVersion(handle)),
        "ecc_mode_current": lambda: _enabled(nvml.nvmlDeviceGetEccMode(handle)[0]),
        "ecc_mode_pending": lambda: _enabled(nvml.nvmlDeviceGetEccMode(handle)[1]),
        "ecc_uncorrected_volatile": lambda: int(
            nvml.nvmlDeviceGetTotalEccErrors(
                handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
            )
        ),
        "ecc_corrected_volatile": lambda: int(
            nvml.nvmlDeviceGetTotalEccErrors(
                handle, nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_VOLATILE_ECC
            )
        ),
        "remapped_rows": lambda: dict(
            zip(
                ("correctable", "uncorrectable", "pending", "failure"),
                (int(v) for v in nvml.nvmlDeviceGetRemappedRows(handle)),
                strict=True,
            )
        ),
        "mig_mode": lambda: _enabled(nvml.nvmlDeviceGetMigMode(handle)[0]),
        "persistence_mode": lambda: _enabled(nvml.nvmlDeviceGetPersistenceMode(handle)),
        "compute_mode": lambda: _COMPUTE_MODES.get(int(nvml.nvmlDeviceGetComputeMode(handle)), "unknown"),
        "cc_mode": lambda: "on" if int(nvml.nvmlSystemGetConfComputeState().ccFeature) else "off",
        "max_clocks_mhz": lambda: {
            "sm": int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM)),
            "memory": int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM)),
        },
        "power_limit_w": lambda: round(int(nvml.nvmlDeviceGetEnforcedPowerLimit(handle)) / 1000, 1),
    }
    found: dict[str, Any] = {}
    for key, read in readers.items():
        with contextlib.suppress(Exception):  # not supported here: leave it out
            found[key] = read()
    return found


def _cuda_version(value: int) -> str:
    return f"{value // 1000}.{(value % 1000) // 10}"


@dataclass
class Samples:
    """Running statistics of the sampled readings."""

    count: int = 0
    util_sum: float = 0.0
    util_max: int = 0
    mem_util_max: int = 0
    memory_used_peak: int = 0
    memory_used_first: int | None = None
    errors: int = 0
    readings: list[tuple[int, int]] = field(default_factory=list)

    def add(self, gpu_util: int, mem_util: int, memory_used: int) -> None:
        self.count += 1
        self.util_sum += gpu_util
        self.util_max = max(self.util_max, gpu_util)
        self.mem_util_max = max(self.mem_util_max, mem_util)
        self.memory_used_peak = max(self.memory_used_peak, memory_used)
        if self.memory_used_first is None:
            self.memory_used_first = memory_used


def sample(nvml: Any, handle: Any, samples: Samples) -> None:
    """One reading of utilisation and memory in use."""
    rates = nvml.nvmlDeviceGetUtilizationRates(handle)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    samples.add(int(rates.gpu), int(rates.memory), int(memory.used))


def summarise(info: dict[str, Any], samples: Samples, torch_peak_bytes: int | None = None) -> dict[str, Any]:
    report = dict(info)
    report["samples"] = samples.count
    if samples.count:
        report["utilization_mean_pct"] = round(samples.util_sum / samples.count, 1)
        report["utilization_max_pct"] = samples.util_max
        report["memory_utilization_max_pct"] = samples.mem_util_max
        report["peak_memory_used_mib"] = round(samples.memory_used_peak / MIB)
        if samples.memory_used_first is not None:
            report["memory_used_at_start_mib"] = round(samples.memory_used_first / MIB)
    if torch_peak_bytes is not None:
        report["torch_peak_allocated_mib"] = round(torch_peak_bytes / MIB)
    if samples.errors:
        report["sample_errors"] = samples.errors
    return report


class GpuMonitor:
    """Context manager: identity at start, utilisation/memory sampled every `interval_s`."""

    def __init__(self, nvml: Any | None = None, interval_s: float = 0.1, *, autoload: bool = True) -> None:
        self._nvml = nvml if nvml is not None else (load_nvml() if autoload else None)
        self._interval = interval_s
        self._samples = Samples()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: Any = None
        self._info: dict[str, Any] = dict(CPU_ONLY)
        self.report: dict[str, Any] = dict(CPU_ONLY)

    def __enter__(self) -> GpuMonitor:
        if self._nvml is None:
            return self
        try:
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(device_index(self._nvml))
            self._info = identity(self._nvml, self._handle)
            sample(self._nvml, self._handle, self._samples)
        except Exception as exc:  # a driver that answers badly must not fail the job
            self._info = {**CPU_ONLY, "nvml_error": f"{type(exc).__name__}: {exc}"}
            self._handle = None
            return self
        self._thread = threading.Thread(target=self._run, name="gpu-monitor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                sample(self._nvml, self._handle, self._samples)
            except Exception:
                self._samples.errors += 1

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._handle is not None:
            try:
                sample(self._nvml, self._handle, self._samples)
            except Exception:
                self._samples.errors += 1
        self.report = summarise(self._info, self._samples, _torch_peak())
        if self._handle is None:
            self.report = {k: v for k, v in self.report.items() if k not in ("samples",)}


def _torch_peak() -> int | None:
    """The process's own peak allocation on CUDA, when torch is loaded and uses CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return int(torch.cuda.max_memory_allocated())
    except Exception:
        return None
    return None
