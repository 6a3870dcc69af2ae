"""The results file, the printed table and the latency picture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}"
    return f"{value:,}{unit}"


def _rows(results: dict[str, Any]) -> list[str]:
    lines = ["Observation latency (s; Airflow end -> record stored in Dagster) and completeness"]
    lines.append(
        f"  {'Airflow':8} {'storage':9} {'observer':24} {'task p50':>8} {'p95':>7} {'max':>7} "
        f"{'run p50':>8} {'p95':>7} {'max':>7}  recorded/reported  missed"
    )
    for phase in results.get("latency", []):
        for obs in phase["observers"]:
            task, run, done = obs["latency_task_end"], obs["latency_run_end"], obs["completeness"]
            missed = ", ".join(f"{n} {what}" for what, n in done["missed"].items()) or "none"
            lines.append(
                f"  {phase['airflow']:8} {phase['storage']:9} {obs['label']:24} {_fmt(task['p50']):>8} "
                f"{_fmt(task['p95']):>7} {_fmt(task['max']):>7} {_fmt(run['p50']):>8} {_fmt(run['p95']):>7} "
                f"{_fmt(run['max']):>7}  {done['recorded']:>4}/{done['reported_by_airflow']:<4}          {missed}"
            )
    lines.append("REST requests to Airflow per hour (counting proxy per observer)")
    width = max([24, *(len(label) for entry in results.get("load", []) for label in entry["labels"].values())])
    lines.append(f"  {'DAGs':>5} {'observer':{width}} {'at startup':>10} {'idle/h':>9} {'under runs/h':>12}")
    for entry in results.get("load", []):
        for name, figures in entry["observers"].items():
            lines.append(
                f"  {entry['dag_count']:>5} {entry['labels'].get(name, name):{width}} "
                f"{figures['startup_requests']:>10} {_fmt(figures['idle_per_hour']):>9} "
                f"{_fmt(figures['runs_per_hour']):>12}"
            )
    sweeps = _sweep_rows(results)
    if sweeps:
        lines.append("REST gap repair: requests per sweep (sweeps counted in each window)")
        lines.append(f"  {'DAGs':>5} {'interval':>8} {'idle/sweep':>10} {'sweeps':>6} {'runs/sweep':>10} {'sweeps':>6}")
        for count, figures in sweeps:
            lines.append(
                f"  {count:>5} {figures['gap_repair_interval']:>7g}s "
                f"{_fmt(figures['idle_requests_per_sweep']):>10} {figures['idle_sweeps']:>6} "
                f"{_fmt(figures['runs_requests_per_sweep']):>10} {figures['runs_sweeps']:>6}"
            )
    overhead = results.get("overhead", {})
    if overhead.get("timing"):
        lines.append("Listener overhead per task event (ms)")
        for state in ("broker_up", "broker_down"):
            figures = overhead["timing"][state]
            lines.append(
                f"  {state:12} p50 {_fmt(figures['p50'])}  p95 {_fmt(figures['p95'])}  max {_fmt(figures['max'])}"
            )
    if overhead.get("memory"):
        memory = overhead["memory"]
        lines.append(
            f"  extra memory in an Airflow 2.11 process: {memory['extra_mb']} MB "
            f"({memory['before_mb']} -> {memory['after_mb']} MB)"
        )
    if results.get("throughput"):
        lines.append("Consumer throughput (events/s recorded into Dagster)")
    for entry in results.get("throughput", []):
        rates = entry["events_per_second"]
        lines.append(
            f"  {entry['storage']:9} sensor {_fmt(rates['sensor'])}  replay {_fmt(rates['replay'])}  "
            f"Dagster's report_runless_asset_event loop {_fmt(rates['dagster_loop'])}  "
            f"sensor/loop {entry['sensor_vs_loop']}  replay/loop {entry['replay_vs_loop']}  "
            f"(profile: {entry['profile']['report_runless_asset_event_share']:.0%} of the sensor's time in "
            f"Dagster's per-event write)"
        )
        if "stream" in rates:
            stream = entry["stream"]
            lines.append(
                f"  {'':9} stream {_fmt(rates['stream'])}  stream/loop {entry['stream_vs_loop']}  "
                f"(timed {stream['timed']}; start-up {stream['startup_seconds']} s left out, "
                f"{_fmt(stream['events_per_second_with_startup'])}/s with it)"
            )
    return lines


def _sweep_rows(results: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(DAG count, figures) of every gap-repair observer of the load phases."""
    return [
        (entry["dag_count"], entry["observers"][name])
        for entry in results.get("load", [])
        for name in entry.get("gap_repair", {})
        if name in entry["observers"]
    ]


def table(results: dict[str, Any]) -> str:
    """The human-readable summary printed at the end of a run."""
    return "\n".join(_rows(results))


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")


def draw_latency(results: dict[str, Any], path: Path) -> None:
    """Cumulative distributions of task-end and run-end latency, one line per observer and storage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One colour per observer (the stream, the sensor, each Airlift), one line style per phase.
    labels = sorted({obs["label"] for phase in results.get("latency", []) for obs in phase["observers"]})
    colours = {label: plt.get_cmap("tab10")(index % 10) for index, label in enumerate(labels)}
    phases = sorted({(phase["airflow"], phase["storage"]) for phase in results.get("latency", [])})
    styles = {phase: ("-", "--", ":", "-.")[index % 4] for index, phase in enumerate(phases)}
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axis, kind, title in ((axes[0], "task", "task end"), (axes[1], "run", "DAG-run end")):
        for phase in results.get("latency", []):
            for obs in phase["observers"]:
                samples = sorted(obs["samples"][kind])
                if not samples:
                    continue
                share = [(index + 1) / len(samples) for index in range(len(samples))]
                label = f"{obs['label']}, Airflow {phase['airflow']}, {phase['storage']}"
                axis.step(
                    samples,
                    share,
                    where="post",
                    label=label,
                    color=colours[obs["label"]],
                    linestyle=styles[(phase["airflow"], phase["storage"])],
                )
        axis.set_xscale("symlog", linthresh=0.1)  # the stream records within a second
        axis.set_xlabel(f"seconds from {title} to the record stored in Dagster")
        axis.set_title(f"Observation latency after {title}")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("share of terminal states recorded")
    axes[1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results: dict[str, Any]) -> str:
    """The README's tables, from a results dictionary (``python -m bench.compare.report results.json``)."""
    lines = [
        "| Airflow | storage | observer | task end p50 / p95 / max (s) | DAG-run end p50 / p95 / max (s) "
        "| recorded / reported | missed |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in results.get("latency", []):
        for obs in phase["observers"]:
            task, run, done = obs["latency_task_end"], obs["latency_run_end"], obs["completeness"]
            missed = ", ".join(f"{n} {what}" for what, n in done["missed"].items()) or "none"
            lines.append(
                f"| {phase['airflow']} | {phase['storage']} | {obs['label']} "
                f"| {_fmt(task['p50'])} / {_fmt(task['p95'])} / {_fmt(task['max'])} "
                f"| {_fmt(run['p50'])} / {_fmt(run['p95'])} / {_fmt(run['max'])} "
                f"| {done['recorded']} / {done['reported_by_airflow']} | {missed} |"
            )
    lines += [
        "",
        "| DAGs | observer | requests at startup | per hour idle | per hour under runs |",
        "|---|---|---|---|---|",
    ]
    for entry in results.get("load", []):
        for name, figures in entry["observers"].items():
            lines.append(
                f"| {entry['dag_count']:,} | {entry['labels'].get(name, name)} | {figures['startup_requests']} "
                f"| {_fmt(figures['idle_per_hour'])} | {_fmt(figures['runs_per_hour'])} |"
            )
    sweeps = _sweep_rows(results)
    if sweeps:
        lines += [
            "",
            "| DAGs | gap-repair interval | requests per sweep, idle (sweeps) "
            "| requests per sweep, under runs (sweeps) |",
            "|---|---|---|---|",
        ]
        for count, figures in sweeps:
            lines.append(
                f"| {count:,} | {figures['gap_repair_interval']:g} s "
                f"| {_fmt(figures['idle_requests_per_sweep'])} ({figures['idle_sweeps']}) "
                f"| {_fmt(figures['runs_requests_per_sweep'])} ({figures['runs_sweeps']}) |"
            )
    overhead = results.get("overhead", {})
    if overhead.get("timing") and overhead.get("memory"):
        timing, memory = overhead["timing"], overhead["memory"]
        lines += ["", "| listener, per task event | p50 | p95 | max |", "|---|---|---|---|"]
        for state, label in (("broker_up", "broker up"), ("broker_down", "broker down (spooled)")):
            figures = timing[state]
            lines.append(
                f"| {label} | {_fmt(figures['p50'])} ms | {_fmt(figures['p95'])} ms | {_fmt(figures['max'])} ms |"
            )
        lines.append(f"| extra memory in an Airflow 2.11 process | {memory['extra_mb']} MB | | |")
    if results.get("throughput"):
        lines += [
            "",
            "| storage | sensor (events/s) | replay | stream | Dagster's own loop | sensor / loop | replay / loop "
            "| stream / loop | sensor time in Dagster's write |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for entry in results["throughput"]:
            rates = entry["events_per_second"]
            lines.append(
                f"| {entry['storage']} | {_fmt(rates['sensor'])} | {_fmt(rates['replay'])} "
                f"| {_fmt(rates.get('stream'))} | {_fmt(rates['dagster_loop'])} | {entry['sensor_vs_loop']} "
                f"| {entry['replay_vs_loop']} | {_fmt(entry.get('stream_vs_loop'))} "
                f"| {entry['profile']['report_runless_asset_event_share']:.0%} |"
            )
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for target in results.get("targets", []):
        met = {True: "yes", False: "**no**", None: "not measured"}[target["met"]]
        lines.append(f"| {target['target']} | {target['measured']} | {met} |")
    return "\n".join(lines)


def sustained_markdown(runs: list[dict[str, Any]]) -> str:
    """The README's table of :mod:`bench.sustained` runs, one row each."""
    lines = [
        "| consumer | storage | events/s x minutes | lag p50 / p95 / max (s) | most events behind "
        "| publish to record p50 / p95 / max (s) | drained after the last event | duplicates | unrecorded |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lag, latency, once = run["lag_seconds"], run["record_latency_seconds"], run["exactly_once"]
        drained = run.get("drained_seconds_after_last_event")
        lines.append(
            f"| {run['consumer']} | {run['storage']} | {run['rate']:g} x {run['minutes']:g} "
            f"| {_fmt(lag['p50'])} / {_fmt(lag['p95'])} / {_fmt(lag['max'])} | {run['max_lag_events']:,} "
            f"| {_fmt(latency['p50'])} / {_fmt(latency['p95'])} / {_fmt(latency['max'])} "
            f"| {'not within the drain window' if drained is None else f'{drained:g} s'} "
            f"| {once['duplicates']} | {once['missing']:,} of {once['published']:,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from bench.compare import targets

    # python -m bench.compare.report docs/bench/results.json: the README's tables, the targets judged
    # again with the sustained runs' results beside it (docs/bench/sustained*.json) when there are some.
    results_path = Path(sys.argv[1])
    loaded = json.loads(results_path.read_text())
    sustained = targets.read_sustained(results_path.parent)
    loaded["targets"] = targets.evaluate(
        loaded, sustained=sustained, replays=targets.read_runs(results_path.parent, "replay-*.json")
    )
    print(markdown(loaded))
    if sustained:
        print()
        print(sustained_markdown(sustained))
