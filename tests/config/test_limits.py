"""Plans, rate-limiting settings and the rate-limit policy's config: what is accepted
and the precise errors for what is not."""

from __future__ import annotations

import pytest

from gateway.checks import run_checks
from gateway.config import ConfigError
from tests.support.configs import make_config, write_contract


def _api(**policy):
    return {
        "name": "shop",
        "upstream": {"targets": ["http://127.0.0.1:9"]},
        "policies": {"rate-limit": policy},
    }


def test_plans_parse_with_strategies_and_quotas(tmp_path):
    api = _api(default_plan="free", operations={"POST /orders": "10/minute"})
    api["contract"] = write_contract(tmp_path, "shop", ["POST /orders"])
    config = make_config(
        tmp_path,
        [api],
        plans={
            "free": {
                "limits": ["60/minute", "1000/day"],
                "strategy": "moving-window",
                "quotas": {"daily": 500},
            },
            "gold": {
                "limits": ["6000/minute"],
                "strategy": "sliding-window-counter",
                "quotas": {"daily": 100000, "monthly": 2000000},
            },
        },
    )
    free, gold = config.plans["free"], config.plans["gold"]
    assert [(i.amount, i.get_expiry()) for i in free.items()] == [(60, 60), (1000, 86400)]
    assert free.quotas.daily == 500 and free.quotas.monthly is None
    assert gold.strategy == "sliding-window-counter" and gold.quotas.monthly == 2000000
    policy = config.apis[0].policy_configs["rate-limit"]
    assert policy.on_storage_error == "fail_open"  # the documented default
    assert policy.anonymous == ["60/minute"]
    assert config.rate_limiting.token_endpoint_limit == "30/minute"
    assert run_checks(config) == []


def _problems(tmp_path, apis=None, **top) -> str:
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, apis or [], **top)
    return str(info.value)


def test_unparseable_limit_names_the_field_and_the_fix(tmp_path):
    text = _problems(tmp_path, plans={"free": {"limits": ["60/minute", "lots/hour"]}})
    assert "plans.free.limits[1]: 'lots/hour' is not a rate limit; write 'N/unit'" in text
    text = _problems(tmp_path, plans={"free": {"limits": ["5/fortnight"]}})
    assert "plans.free.limits[0]: '5/fortnight' is not a rate limit" in text
    text = _problems(tmp_path, plans={"free": {"limits": ["0/minute"]}})
    assert "plans.free.limits[0]: '0/minute' is not a rate limit" in text


def test_unknown_strategy_and_bad_quota_are_refused(tmp_path):
    text = _problems(tmp_path, plans={"free": {"limits": ["1/second"], "strategy": "token-bucket"}})
    assert "plans.free.strategy:" in text and "'moving-window'" in text
    assert "'sliding-window-counter'" in text
    text = _problems(tmp_path, plans={"free": {"quotas": {"daily": 0}}})
    assert "plans.free.quotas.daily:" in text
    text = _problems(tmp_path, plans={"Free Plan": {}})
    assert "plans.Free Plan" in text


def test_storage_url_and_settings_are_checked(tmp_path):
    text = _problems(tmp_path, limits_storage="memcached://127.0.0.1:11211")
    assert "limits_storage: 'memcached://127.0.0.1:11211' is not a supported" in text
    for url in (
        "memory://",
        "redis://127.0.0.1:6379/0",
        "redis+sentinel://h:26379/mymaster",
        "redis+cluster://h:7000,h:7001",
        "rediss://h:6380",
    ):
        assert make_config(tmp_path, [], limits_storage=url).limits_storage == url
    text = _problems(tmp_path, rate_limiting={"token_endpoint_limit": "many"})
    assert "rate_limiting.token_endpoint_limit: 'many' is not a rate limit" in text
    text = _problems(tmp_path, rate_limiting={"storage_timeout": 0})
    assert "rate_limiting.storage_timeout:" in text


def test_policy_config_errors_point_into_the_api(tmp_path):
    api = _api(operations={"FETCH /orders": "1/second"})
    api["contract"] = write_contract(tmp_path, "shop", ["POST /orders"])
    text = _problems(tmp_path, [api])
    assert "apis[0].policies.rate-limit.operations.FETCH /orders: 'FETCH /orders' names" in text
    assert "did you mean 'POST /orders'?" in text
    text = _problems(tmp_path, [_api(operations={"POST /orders": "1/second"})])
    assert "API 'shop' has no contract to name it in" in text
    text = _problems(tmp_path, [_api(limits=["100/minut"])])
    assert "apis[0].policies.rate-limit.limits[0]: '100/minut' is not a rate limit" in text
    text = _problems(tmp_path, [_api(on_storage_error="ignore")])
    assert "apis[0].policies.rate-limit.on_storage_error:" in text


def test_check_reports_an_undefined_default_plan(tmp_path):
    config = make_config(tmp_path, [_api(default_plan="silver")], plans={"free": {}})
    problems = run_checks(config)
    assert len(problems) == 1
    assert "plan 'silver' is not defined under `plans:` (defined: free)" in problems[0]


def test_a_plan_counts_per_window_whatever_its_amount():
    from limits import RateLimitItemPerMinute, parse

    from gateway.config.limits import PlanConfig

    five, four = (PlanConfig(limits=[f"{n}/minute"]).items()[0] for n in (5, 4))
    assert (five.amount, four.amount) == (5, 4)
    assert five.key_for("plan", "c:acme") == four.key_for("plan", "c:acme")
    assert five.key_for("plan", "c:acme") != five.key_for("plan", "c:other")
    hourly = PlanConfig(limits=["5/hour"]).items()[0]
    assert hourly.key_for("plan", "c:acme") != five.key_for("plan", "c:acme")
    # `limits`' own parser and keys are untouched
    assert type(parse("5/minute")) is RateLimitItemPerMinute
    assert parse("5/minute").key_for("x") != parse("4/minute").key_for("x")
