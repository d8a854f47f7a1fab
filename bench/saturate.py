"""Saturated userName-lookup throughput, measured with wrk.

``bench.load`` is a Python process that spends 0.8 to 3 ms of CPU time per
request in the runs recorded in docs/benchmarks.md, more than a fast server
does. On a machine with two CPUs it then sets the pace of both servers in a
comparison instead of measuring them. wrk (Debian's package ``wrk``) is
written in C and spends a fraction of that, so it keeps a server busy with
less of the machine.

wrk sends ``GET /Users?filter=userName eq "..."`` for random seeded users over
keep-alive connections for a fixed time. A Lua script builds the requests,
checks that every response is a 200 whose body matches exactly one user, and
prints its counts as JSON, which ``saturate`` returns with the server's CPU
time per request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psutil

# The script sets the token and the base path from wrk's arguments. Each
# thread of wrk seeds its own random generator, from its index.
LOOKUP_SCRIPT = r"""
local threads = {}
local next_index = 0

function setup(thread)
  thread:set("index", next_index)
  next_index = next_index + 1
  table.insert(threads, thread)
end

function init(args)
  base_path, users = args[1], tonumber(args[2])
  wrk.headers["Authorization"] = "Bearer " .. args[3]
  wrk.headers["Accept"] = "application/scim+json"
  math.randomseed(1 + index)
  responses, mismatched, first_mismatch = 0, 0, ""
end

function request()
  local user = math.random(0, users - 1)
  local name = string.format("bench-user-%07d%%40example.com", user)
  return wrk.format(
    "GET", base_path .. "/Users?filter=userName%20eq%20%22" .. name .. "%22")
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 or not string.find(body, '"totalResults":%s*1[,}]') then
    mismatched = mismatched + 1
    if first_mismatch == "" then
      first_mismatch = status .. " " .. string.sub(body, 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local counted, wrong, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    counted = counted + thread:get("responses")
    wrong = wrong + thread:get("mismatched")
    if first == "" then first = thread:get("first_mismatch") end
  end
  local errors = summary.errors
  io.write("WRK-RESULT ", string.format(
    '{"responses":%d,"mismatched":%d,"first_mismatch":"%s","duration_us":%d,'
    .. '"socket_errors":%d,"p50_us":%d,"p99_us":%d}',
    counted, wrong, (string.gsub(first, '[%c"\\]', " ")), summary.duration,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)), "\n")
end
"""

RESULT_PREFIX = "WRK-RESULT "


class WrkMissingError(RuntimeError):
    """wrk is not on PATH."""


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissingError(
            "wrk is not installed: install Debian's wrk package "
            "(apt-get install wrk), or pass --no-saturation to skip the "
            "saturated lookup throughput"
        )
    return found


def saturate(
    base_url: str,
    token: str,
    users: int,
    *,
    seconds: float,
    connections: int,
    work_dir: Path,
    server_pid: int,
) -> dict[str, Any]:
    """Run wrk's lookups against ``base_url`` and return throughput and
    latencies, with the server's CPU time per request.

    One wrk thread sends over ``connections`` connections, so that wrk takes
    as little of the machine's CPU time as it can.
    """
    origin, _, rest = base_url.partition("://")
    host, slash, base_path = rest.partition("/")
    script = work_dir / "lookup.lua"
    script.write_text(LOOKUP_SCRIPT)
    server = psutil.Process(server_pid)
    cpu_before = _cpu_seconds(server)
    completed = subprocess.run(
        [
            wrk_path(),
            "--threads=1",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=10s",
            f"--script={script}",
            f"{origin}://{host}/",
            "--",
            f"{slash}{base_path}",
            str(users),
            token,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    cpu = _cpu_seconds(server) - cpu_before
    if completed.returncode != 0:
        raise RuntimeError(
            f"wrk exited with status {completed.returncode}:\n{completed.stderr}"
        )
    found = parse_result(completed.stdout)
    responses = found["responses"]
    ok = responses - found["mismatched"]
    duration = found["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "connections": connections,
        "seconds": round(duration, 2),
        "requests": responses,
        "ok": ok,
        "errors": found["mismatched"] + found["socket_errors"],
        "first_error": found["first_mismatch"] or None,
        "throughput": ok / duration if duration > 0 else 0.0,
        "p50_ms": found["p50_us"] / 1000,
        "p99_ms": found["p99_us"] / 1000,
        "server_cpu_ms": cpu * 1000 / responses if responses else None,
    }


def parse_result(output: str) -> dict[str, Any]:
    """Return the counts that the Lua script's ``done`` printed."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    raise RuntimeError(f"wrk printed no result line:\n{output}")


def _cpu_seconds(server: psutil.Process) -> float:
    times = server.cpu_times()
    return float(times.user + times.system)
