"""FaultInjector and FaultRule: matching, schedules, seeded probability, validation."""

from __future__ import annotations

import json

import pytest
from precoro_sandbox.faults import (
    FaultInjector,
    FaultRule,
    html_error_page,
    json_error_body,
    parse_rules,
    truncate,
)


def fire_pattern(injector: FaultInjector, n: int, method="GET", path="/suppliers") -> list[bool]:
    return [injector.pick(method, path) is not None for _ in range(n)]


def test_no_rules_no_fault():
    assert FaultInjector().pick("GET", "/suppliers") is None


def test_rule_without_schedule_or_probability_fires_every_time():
    injector = FaultInjector()
    rule = FaultRule(kind="status", status=503)
    injector.add(rule)
    assert injector.pick("GET", "/anything") is rule
    assert fire_pattern(injector, 3) == [True, True, True]


def test_schedule_counts_matching_requests_only():
    injector = FaultInjector()
    injector.add(FaultRule(kind="drop", route="/suppliers*", schedule=[2, 5]))
    hits = []
    for i in range(1, 7):
        assert injector.pick("GET", "/items") is None  # not matching: not counted
        hits.append(injector.pick("GET", f"/suppliers?page={i}") is not None)
    assert hits == [False, True, False, False, True, False]
    assert injector.fired() == {"0 drop * /suppliers*": 2}


def test_times_limits_firing():
    injector = FaultInjector()
    injector.add(FaultRule(kind="status", times=2))
    assert fire_pattern(injector, 5) == [True, True, False, False, False]
    injector.set_rules([FaultRule(kind="status", times=0)])
    assert fire_pattern(injector, 2) == [False, False]


def test_probability_is_deterministic_for_a_seed():
    def run(seed: int) -> list[bool]:
        injector = FaultInjector(seed=seed)
        injector.add(FaultRule(kind="status", probability=0.3))
        return fire_pattern(injector, 200)

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert 30 <= sum(first) <= 90  # roughly 30 %, not a wall-clock or flaky check


def test_probability_extremes():
    injector = FaultInjector(seed=1)
    injector.set_rules([FaultRule(kind="status", probability=0.0)])
    assert not any(fire_pattern(injector, 50))
    injector.set_rules([FaultRule(kind="status", probability=1.0)])
    assert all(fire_pattern(injector, 50))


def test_set_rules_restarts_counters_and_streams():
    injector = FaultInjector(seed=3)
    injector.set_rules([FaultRule(kind="status", probability=0.5)])
    first = fire_pattern(injector, 40)
    injector.set_rules([FaultRule(kind="status", probability=0.5)])
    assert fire_pattern(injector, 40) == first


def test_appending_a_rule_does_not_change_earlier_rules_draws():
    lone = FaultInjector(seed=5)
    lone.add(FaultRule(kind="status", route="/invoices*", probability=0.5))
    expected = fire_pattern(lone, 30, path="/invoices")

    pair = FaultInjector(seed=5)
    pair.add(FaultRule(kind="status", route="/invoices*", probability=0.5))
    pair.add(FaultRule(kind="delay", route="/suppliers*", probability=0.5))
    got = []
    for _ in range(30):
        pair.pick("GET", "/suppliers")
        got.append(pair.pick("GET", "/invoices") is not None)
    assert got == expected


def test_route_and_method_matching():
    injector = FaultInjector()
    rule = FaultRule(kind="apply_then_fail", route="/invoices/*", method="post", status=502)
    injector.add(rule)
    assert rule.method == "POST"
    assert injector.pick("GET", "/invoices/5") is None
    assert injector.pick("POST", "/invoices") is None
    assert injector.pick("POST", "/purchaseorders/5") is None
    assert injector.pick("post", "/invoices/5") is rule
    assert injector.pick("POST", "/invoices/5?x=1") is rule  # query ignored


def test_first_firing_rule_wins_but_all_matching_rules_count():
    injector = FaultInjector()
    first = FaultRule(kind="status", schedule=[1])
    second = FaultRule(kind="drop", schedule=[1, 2])
    injector.set_rules([first, second])
    assert injector.pick("GET", "/a") is first
    assert injector.pick("GET", "/a") is second
    assert injector.pick("GET", "/a") is None
    assert list(injector.fired().values()) == [1, 1]
    snapshot = injector.snapshot()
    assert [(s["matched"], s["fired"]) for s in snapshot] == [(3, 1), (3, 1)]


def test_rules_and_clear():
    injector = FaultInjector()
    rules = [FaultRule(kind="status"), FaultRule(kind="delay", delay_seconds=0.5)]
    injector.set_rules(rules)
    assert injector.rules() == rules
    injector.clear()
    assert injector.rules() == []
    assert injector.fired() == {}


def test_dict_round_trip():
    rule = FaultRule(
        kind="status", route="/suppliers*", method="GET", status=503, html=True, schedule=[2]
    )
    data = rule.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert FaultRule.from_dict(data) == rule
    assert FaultRule.from_dict({"kind": "truncate"}) == FaultRule(kind="truncate")
    assert parse_rules([{"kind": "drop"}, {"kind": "delay", "delay_seconds": 1}])[1].kind == (
        "delay"
    )
    assert parse_rules({"kind": "drop"}) == [FaultRule(kind="drop")]


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"kind": "explode"}, "explode"),
        ({"kind": "status", "colour": "red", "size": 2}, "colour, size"),
        ({"route": "/x"}, "kind"),
        ({"kind": "status", "status": 700}, "status"),
        ({"kind": "status", "status": "500"}, "status"),
        ({"kind": "status", "probability": 1.5}, "probability"),
        ({"kind": "status", "schedule": [0, 2]}, "schedule"),
        ({"kind": "status", "schedule": 3}, "schedule"),
        ({"kind": "status", "schedule": [1], "probability": 0.5}, "not both"),
        ({"kind": "status", "times": -1}, "times"),
        ({"kind": "delay", "delay_seconds": -1}, "delay_seconds"),
        ({"kind": "status", "html": "yes"}, "html"),
        ({"kind": "status", "method": "GET /"}, "method"),
        ({"kind": "status", "route": ""}, "route"),
        ("status", "JSON object"),
    ],
)
def test_from_dict_validation(data, named):
    with pytest.raises(ValueError, match=named):
        FaultRule.from_dict(data)


def test_describe():
    assert FaultRule(kind="status", status=503, method="GET", route="/a*").describe() == (
        "status 503 GET /a*"
    )
    assert FaultRule(kind="apply_then_fail", then_drop=True).describe() == (
        "apply_then_fail 500 drop * *"
    )
    assert FaultRule(kind="delay", delay_seconds=2.5).describe() == "delay 2.5s * *"


def test_error_bodies():
    page = html_error_page(502).decode()
    assert page.startswith("<html>")
    assert "<title>502 Bad Gateway</title>" in page
    assert "nginx" in page
    assert json.loads(json_error_body(500)) == {"error": "Internal Server Error", "code": 500}
    assert json.loads(json_error_body(504)) == {"error": "Gateway Timeout", "code": 504}
    assert json.loads(json_error_body(599))["code"] == 599
    assert "599" in html_error_page(599).decode()


def is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"data": [{"id": i, "name": f"S{i}"} for i in range(20)]}).encode(),
        b"{}",
        b"[]",
        b"12345678",
        b'"abcdef"',
        b'{"a": 1}' + b" " * 50,
        '{"name": "Łódzkie Zakłady — 100 €"}'.encode(),
        b"",
    ],
)
def test_truncate_is_a_prefix_and_never_valid_json(body):
    cut = truncate(body)
    assert body.startswith(cut)
    assert len(cut) <= max(1, len(body) // 2)
    assert not is_json(cut)


def test_truncate_keeps_about_half():
    body = json.dumps({"data": list(range(1000))}).encode()
    assert len(truncate(body)) == len(body) // 2
