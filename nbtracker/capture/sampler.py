"""System metrics: one sample of the machine and this process, with W&B's key names.

Keys (under ``system/``): ``cpu`` (this process, % of all cores), ``cpu.{i}.cpu_percent``,
``memory_percent``, ``proc.memory.availableMB``, ``proc.memory.rssMB``,
``proc.memory.percent``, ``proc.cpu.threads``, ``disk.{path}.usagePercent``,
``disk.{path}.usageGB``, ``disk.in`` / ``disk.out`` (MB read / written since the run
started), ``network.sent`` / ``network.recv`` (bytes since the run started), and per NVIDIA
GPU ``gpu.{i}.gpu``, ``memory``, ``memoryAllocated``, ``memoryAllocatedBytes``, ``temp``,
``powerWatts``, ``powerPercent``. A metric the machine does not offer is left out.
"""

from __future__ import annotations

import os
from typing import Any

PREFIX = "system/"
_MB = 1024.0 * 1024.0
_GB = 1024.0 * _MB


_NO_NVML = False


class Sampler:
    """Samples the machine (psutil) and NVIDIA GPUs (NVML, when there are any).

    Created in the capture thread; ``sample()`` returns ``{key: float}``. Without psutil it
    samples nothing (``available`` is False); without a GPU or NVML the GPU keys are
    simply absent.
    """

    def __init__(self, disk_paths: tuple[str, ...] = ("/",), pid: int | None = None) -> None:
        self.disk_paths = disk_paths
        self.available = False
        self._nvml: Any = None
        self._gpus: list[Any] = []
        try:
            import psutil
        except ImportError:
            return
        self._ps = psutil
        try:
            self._proc = psutil.Process(pid or os.getpid())
            self._ncpu = psutil.cpu_count() or 1
            self._proc.cpu_percent(None)  # the first call primes the counters
            psutil.cpu_percent(None, percpu=True)
        except Exception:  # noqa: BLE001 - a sandbox that hides /proc: no samples
            return
        self.available = True
        self._io0 = self._call(psutil.disk_io_counters)
        self._net0 = self._call(psutil.net_io_counters)
        self._init_gpus()

    @staticmethod
    def _call(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - a counter this machine does not have
            return None

    def _init_gpus(self) -> None:
        global _NO_NVML
        if _NO_NVML:  # looked for once per process (a failed import searches sys.path)
            return
        try:
            import pynvml  # the nvidia-ml-py package
        except ImportError:
            _NO_NVML = True
            return
        try:
            pynvml.nvmlInit()
            self._gpus = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - no driver or no GPU: quietly none
            self._gpus = []

    def sample(self) -> dict[str, float]:
        if not self.available:
            return {}
        ps, proc = self._ps, self._proc
        out: dict[str, float] = {}
        try:
            with proc.oneshot():
                out["cpu"] = proc.cpu_percent(None) / self._ncpu
                mem = proc.memory_info()
                out["proc.memory.rssMB"] = mem.rss / _MB
                out["proc.memory.percent"] = proc.memory_percent()
                out["proc.cpu.threads"] = float(proc.num_threads())
        except Exception:  # noqa: BLE001, S110 - the process view failed this once
            pass
        per_cpu = self._call(ps.cpu_percent, None, True) or []
        for i, pct in enumerate(per_cpu):
            out[f"cpu.{i}.cpu_percent"] = float(pct)
        vm = self._call(ps.virtual_memory)
        if vm is not None:
            out["memory_percent"] = float(vm.percent)
            out["proc.memory.availableMB"] = vm.available / _MB
        for path in self.disk_paths:
            du = self._call(ps.disk_usage, path)
            if du is not None:
                out[f"disk.{path}.usagePercent"] = float(du.percent)
                out[f"disk.{path}.usageGB"] = du.used / _GB
        io, io0 = self._call(ps.disk_io_counters), self._io0
        if io is not None and io0 is not None:
            out["disk.in"] = (io.read_bytes - io0.read_bytes) / _MB
            out["disk.out"] = (io.write_bytes - io0.write_bytes) / _MB
        net, net0 = self._call(ps.net_io_counters), self._net0
        if net is not None and net0 is not None:
            out["network.sent"] = float(net.bytes_sent - net0.bytes_sent)
            out["network.recv"] = float(net.bytes_recv - net0.bytes_recv)
        if self._gpus:
            self._sample_gpus(out)
        return {PREFIX + k: v for k, v in out.items()}

    def _sample_gpus(self, out: dict[str, float]) -> None:
        nv = self._nvml
        for i, handle in enumerate(self._gpus):
            g = f"gpu.{i}."
            util = self._call(nv.nvmlDeviceGetUtilizationRates, handle)
            if util is not None:
                out[g + "gpu"] = float(util.gpu)
                out[g + "memory"] = float(util.memory)
            mem = self._call(nv.nvmlDeviceGetMemoryInfo, handle)
            if mem is not None and mem.total:
                out[g + "memoryAllocated"] = 100.0 * mem.used / mem.total
                out[g + "memoryAllocatedBytes"] = float(mem.used)
            temp = self._call(nv.nvmlDeviceGetTemperature, handle, 0)  # NVML_TEMPERATURE_GPU
            if temp is not None:
                out[g + "temp"] = float(temp)
            power = self._call(nv.nvmlDeviceGetPowerUsage, handle)
            if power is not None:
                out[g + "powerWatts"] = power / 1000.0
                limit = self._call(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
                if limit:
                    out[g + "powerPercent"] = 100.0 * power / limit

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001, S110
                pass
            self._nvml = None
