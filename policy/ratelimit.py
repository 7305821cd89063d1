"""A plan as RouterOS's Mikrotik-Rate-Limit string.

Format (MikroTik manual): ``rx-rate[/tx-rate] [rx-burst-rate[/tx-burst-rate]
[rx-burst-threshold[/tx-burst-threshold] [rx-burst-time[/tx-burst-time] [priority]
[rx-rate-min[/tx-rate-min]]]]]``, from the router's point of view: **rx is the client's upload,
tx the client's download**. So a 100M down / 50M up plan is ``50M/100M``.
"""

from __future__ import annotations

from typing import Protocol

from aaa.rates import format_rate


class RatePlan(Protocol):
    download_bps: int
    upload_bps: int
    burst_download_bps: int | None
    burst_upload_bps: int | None
    burst_threshold_download_bps: int | None
    burst_threshold_upload_bps: int | None
    burst_time_seconds: int | None
    priority: int | None


def _pair(upload: int, download: int) -> str:
    return f"{format_rate(upload)}/{format_rate(download)}"


def rate_limit(plan: RatePlan, *, scale: float = 1.0) -> str:
    """The Mikrotik-Rate-Limit value for ``plan`` (``scale`` < 1 gives a reduced speed, e.g. 0.1)."""
    up = max(1000, int(plan.upload_bps * scale))
    down = max(1000, int(plan.download_bps * scale))
    fields = [_pair(up, down)]
    has_burst = plan.burst_download_bps is not None and plan.burst_upload_bps is not None and scale == 1.0
    if has_burst:
        fields.append(_pair(plan.burst_upload_bps or up, plan.burst_download_bps or down))
        fields.append(_pair(plan.burst_threshold_upload_bps or up, plan.burst_threshold_download_bps or down))
        seconds = plan.burst_time_seconds or 1
        fields.append(f"{seconds}/{seconds}")
    if plan.priority is not None:
        if not has_burst:
            fields.extend(["0/0", "0/0", "0/0"])
        fields.append(str(plan.priority))
    return " ".join(fields)
