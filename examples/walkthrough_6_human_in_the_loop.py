"""Walkthrough 6: a human in the loop, answering the live service's queries in a terminal.

The setup: a small stream of fruit (weight, length, colour; is it an apple or a
banana?) goes through the real service, ``streamal serve``, on a Kafka-protocol broker
(a local tansu unless ``--bootstrap-servers`` is given). The service asks for the labels
its budget allows; you answer them with the terminal annotator, ``streamal annotate``,
which shows each query's features, the model's prediction and its class probabilities.
While you answer, the script reads the service's ``/metrics`` page and plots the labels
arriving and being learned.

Who answers:

* a person, when stdin is a terminal: type ``apple`` or ``banana`` (Enter accepts the
  prediction, ``s`` skips, ``q`` quits);
* the lines piped into this script, when stdin is a pipe (one answer per query);
* with ``--auto``, the script itself: it reads each query the annotator shows and types
  the true label, like a perfect annotator at the keyboard.

Run: ``python examples/walkthrough_6_human_in_the_loop.py --out OUT [--fast] [--auto]``
(needs ``pip install 'streamal[broker]'`` for the local broker).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
from walkthrough_common import Options, options, plt, save, table

from streamal import Sample
from streamal.cli.demo_stack import FAST_GROUPS, DemoConfig, DemoStack, scrape
from streamal.messages import encode

#: The annotator stops this long after the last query it saw (seconds): long enough for
#: the service's next checkpoint (every 0.5 s) to release queries after the producer's
#: last sample; a person typing gets more slack.
IDLE, IDLE_PERSON = 4.0, 10.0
#: How long to wait for the service to apply the last labels after the annotator stops.
SETTLE = 30.0
METRICS = {
    "samples decided": "streamal_samples_total",
    "queries issued": "streamal_queries_total",
    "labels applied": 'streamal_labels_total{outcome="applied"}',
    "model version": "streamal_model_version",
}


def fruit(n: int, seed: int) -> list[Sample]:
    """Apples and bananas a person can tell apart from weight, length and colour."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        banana = bool(rng.random() < 0.5)
        colour = rng.choice(["yellow", "green"] if banana else ["red", "green", "yellow"])
        out.append(
            Sample(
                id=f"fruit-{i}",
                x={
                    "weight_g": round(
                        float(rng.normal(120, 15) if banana else rng.normal(190, 30))
                    ),
                    "length_cm": round(float(rng.normal(19, 2) if banana else rng.normal(8, 1)), 1),
                    "colour": str(colour),
                },
                y="banana" if banana else "apple",
            )
        )
    return out


def metric(values: dict[str, float], name: str) -> float:
    """A metric's value, summed over its labels when the name carries none."""
    if "{" in name:
        return values.get(name, 0.0)
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


def cli(stack: DemoStack, *args: str, **sets: Any) -> list[str]:
    """A ``streamal`` command line for this stack's broker and topics."""
    cmd = [sys.executable, "-m", "streamal", *args, "--bootstrap-servers", stack.bootstrap]
    for key, value in sets.items():
        cmd += ["--set", f"{key.replace('__', '.')}={value}"]
    return cmd


def play_annotator(proc: subprocess.Popen[str], truth: dict[str, str], log: IO[str]) -> int:
    """Answer every query the annotator shows with its true label (``--auto``)."""
    assert proc.stdin is not None and proc.stdout is not None
    answered = 0
    for line in proc.stdout:
        log.write(line)
        found = re.search(r"sample (\S+) · model v", line)
        if found and found.group(1) in truth:
            proc.stdin.write(truth[found.group(1)] + "\n")
            proc.stdin.flush()
            answered += 1
    return answered


def record(stack: DemoStack, topic: str, out: Path) -> list[dict[str, Any]]:
    """The messages of ``topic``, read from its start with ``streamal record``."""
    path = out / f"{topic}.jsonl"
    subprocess.run(
        cli(
            stack,
            "record",
            topic,
            "--output",
            str(path),
            "--idle",
            "2",
            **{f"kafka__{k}": v for k, v in FAST_GROUPS.items()},
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def watch(url: str, stop: threading.Event, series: list[tuple[float, dict[str, float]]]) -> None:
    started = time.monotonic()
    while not stop.wait(0.25):
        values = scrape(url)
        if values:
            series.append(
                (time.monotonic() - started, {k: metric(values, v) for k, v in METRICS.items()})
            )


def annotate(stack: DemoStack, args: Options, auto: bool, truth: dict[str, str]) -> str:
    """Run ``streamal annotate`` until it has been idle; return its summary line."""
    cmd = cli(
        stack,
        "annotate",
        "--annotator",
        "walkthrough",
        "--idle",
        str(IDLE_PERSON if sys.stdin.isatty() and not auto else IDLE),
        topics__queries=stack.topics["queries"],
        topics__labels=stack.topics["labels"],
        **{f"kafka__{k}": v for k, v in FAST_GROUPS.items()},
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}
    log_path = args.out / "annotator.txt"
    with log_path.open("w") as log:
        if auto:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            play_annotator(proc, truth, log)
            stderr = proc.stderr.read() if proc.stderr else ""
            proc.wait()
        else:  # a person at the terminal, or answers piped into this script
            terminal = sys.stdin.isatty()
            proc = subprocess.Popen(
                cmd,
                stdin=sys.stdin,
                stdout=None if terminal else log,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            stderr = proc.stderr.read() if proc.stderr else ""
            proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"streamal annotate failed ({proc.returncode}):\n{stderr}")
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


def main() -> None:
    def more(parser: Any) -> None:
        parser.add_argument("--auto", action="store_true", help="answer with the true labels")
        parser.add_argument("--bootstrap-servers", help="use this broker, not a local tansu")

    args = options("walkthrough_6", __doc__.splitlines()[0], more=more)
    auto, bootstrap = args.auto, args.bootstrap_servers
    n = 30 if args.fast else 60
    stream = fruit(n, args.seed)
    path: Path = args.out / "fruit.jsonl"
    path.write_bytes(b"\n".join(encode(s) for s in stream) + b"\n")
    truth = {s.id: str(s.y) for s in stream}
    config = DemoConfig(
        source=str(path),
        model="logreg",
        strategy="entropy",
        budget="variable_threshold",
        label_rate=0.25,
        seed=args.seed,
        bootstrap_servers=bootstrap,
    )
    who = "--auto" if auto else ("you" if sys.stdin.isatty() else "piped stdin")
    # A fresh temporary directory for the broker and service state (kept on failure).
    with DemoStack(config) as stack:
        stack.start_broker()
        stack.start_service()
        print(f"service ready, metrics at {stack.metrics_url}; {n} samples; answers: {who}")
        before = {k: metric(scrape(stack.metrics_url), v) for k, v in METRICS.items()}
        series: list[tuple[float, dict[str, float]]] = []
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(stack.metrics_url, stop, series))
        watcher.start()
        try:
            # Paced, so that the model learns from early answers before it picks later
            # queries (all at once, every query would come from the untrained model).
            rate = "1" if who == "you" else "5"
            producer = subprocess.Popen(
                cli(stack, "produce", str(path), "--rate", rate,
                    topics__samples=stack.topics["samples"]),
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            summary = annotate(stack, args, auto, truth)
            _, produced = producer.communicate()
            print(produced.strip())
            print(summary)
            sent = int(m.group(1)) if (m := re.search(r"(\d+) labels sent", summary)) else 0
            deadline = time.monotonic() + SETTLE
            while time.monotonic() < deadline:
                after = {k: metric(scrape(stack.metrics_url), v) for k, v in METRICS.items()}
                if after["labels applied"] >= before["labels applied"] + sent:
                    break
                time.sleep(0.25)
            predictions = record(stack, stack.topics["predictions"], args.out)
        finally:
            stop.set()
            watcher.join()
    print("\nThe service's /metrics page before and after the annotator:")
    print(
        table(["metric", "before", "after"], [[k, int(before[k]), int(after[k])] for k in METRICS])
    )
    hits = [p.get("prediction") == truth.get(p.get("sample_id")) for p in predictions]
    half = len(hits) // 2
    accuracy = {
        "first half": float(np.mean(hits[:half])) if half else float("nan"),
        "second half": float(np.mean(hits[half:])) if hits else float("nan"),
    }
    print("\nThe service's live predictions (each made before its label could be learned):")
    print(table(["samples", "count", "accuracy"], [
        ["first half", half, accuracy["first half"]],
        ["second half", len(hits) - half, accuracy["second half"]],
    ]))  # fmt: skip

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("samples decided", "queries issued", "labels applied"):
        ax.step([t for t, _ in series], [v[name] for _, v in series], where="post", label=name)
    ax.set(
        xlabel="seconds",
        ylabel="count (from /metrics)",
        title=f"Labels arriving at the live service ({who})",
    )
    ax.legend()
    save(
        fig,
        args.out,
        "walkthrough_6",
        {
            "samples": n,
            "answers": who,
            "labels_sent": sent,
            "before": before,
            "after": after,
            "annotator": summary,
            "accuracy": accuracy,
            "predictions": len(predictions),
            "series": [[t, v] for t, v in series],
        },
    )


if __name__ == "__main__":
    main()
