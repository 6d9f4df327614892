"""METRICS parsed by a real Prometheus parser (prometheus_client's
text_string_to_metric_families): every STATS counter is there with its
value, the propagation delay histogram counts the writes received, and the
link metrics carry their labels."""

from __future__ import annotations

import re
import time
from typing import Dict, Tuple

from prometheus_client.parser import text_string_to_metric_families

import zgossip
from conftest import BOUND, unique, wait_status


Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def parse(text: str) -> Tuple[Samples, Dict[str, str], Dict[str, str]]:
    """Samples by (name, sorted labels); metric types; STATS name to metric."""
    samples: Samples = {}
    types: Dict[str, str] = {}
    stat_metric: Dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        m = re.search(r"\(STATS ([a-z0-9-]+)\)$", family.documentation)
        if m:
            stat_metric[m.group(1)] = family.name
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types, stat_metric


def value_of(samples: Samples, name: str, stat: str) -> float:
    for (n, labels), v in samples.items():
        if n in (name, name + "_total"):
            if labels:  # an info metric: the value is its label
                return int(labels[0][1])  # exact: ids exceed a float's 53 bits
            return v * 1000 if name.endswith("_seconds") else v
    raise AssertionError(f"no sample of {name} (STATS {stat})")


def test_metrics_parse_and_match_stats() -> None:
    with zgossip.Node(unique("a")) as a, zgossip.Node(unique("b")) as b:
        port = a.bind("tcp://127.0.0.1:*")
        b.connect(f"tcp://127.0.0.1:{port}")
        for i in range(25):
            a.publish(f"a/{i}", "x")
        for i in range(10):
            b.publish(f"b/{i}", "y")
        assert wait_status(a, 35) == 35
        assert wait_status(b, 35) == 35

        for node, received in ((a, 10), (b, 25)):
            deadline = time.monotonic() + BOUND
            while True:
                before = node.stats()
                text = node.metrics()
                after = node.stats()
                if before == after or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            samples, types, stat_metric = parse(text)
            for stat, v in before.items():
                assert stat in stat_metric, f"STATS {stat} missing from METRICS"
                assert value_of(samples, stat_metric[stat], stat) == v, stat
            assert types["zgossip_frames_out"] == "counter"
            assert types["zgossip_bytes_out"] == "counter"
            assert types["zgossip_tuples"] == "gauge"
            assert types["zgossip_propagation_delay_seconds"] == "histogram"
            count = samples[("zgossip_propagation_delay_seconds_count", ())]
            assert count == received == before["tuples-applied"]
            inf = samples[("zgossip_propagation_delay_seconds_bucket", (("le", "+Inf"),))]
            assert inf == received
            links = [labels for (n, labels) in samples if n == "zgossip_link_frames_in_total"]
            assert len(links) == 1
            label_names = [k for k, _ in links[0]]
            assert label_names == ["conn", "peer", "peer_id", "role"]


def test_metrics_through_the_pipe() -> None:
    with zgossip.Node(unique("a")) as a:
        a.send("METRICS")
        reply = a.recv(timeout=BOUND)
        assert reply is not None and reply[0] == "METRICS" and len(reply) == 2
        samples, _, _ = parse(reply[1])
        assert samples[("zgossip_tuples", ())] == 0
