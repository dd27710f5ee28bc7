"""Weighted targets, target sets and the canary rule: config first."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError
from tests.support.configs import make_config


def _api(**upstream):
    return {"name": "svc", "tier": "system", "base_path": "/svc", "upstream": upstream}


def _problems(tmp_path, **upstream) -> str:
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, [_api(**upstream)])
    return str(error.value)


def test_targets_take_urls_and_weighted_mappings(tmp_path):
    targets = [{"url": "http://a:1", "weight": 9}, "http://b:2", {"url": "http://c:3"}]
    upstream = make_config(tmp_path, [_api(targets=targets)]).apis[0].upstream
    assert upstream.targets == ["http://a:1", "http://b:2", "http://c:3"]
    assert upstream.weights == (9, 1, 1)


def test_plain_targets_weigh_one(tmp_path):
    upstream = make_config(tmp_path, [_api(targets=["http://a:1", "http://b:2"])]).apis[0].upstream
    assert upstream.weights == (1, 1)


@pytest.mark.parametrize("weight", [0, -1, 1001, 2.5, "9", True, None])
def test_a_bad_weight_is_named(tmp_path, weight):
    text = _problems(tmp_path, targets=["http://a:1", {"url": "http://b:2", "weight": weight}])
    assert "apis[0].upstream.targets[1].weight: weight must be an integer from 1 to 1000" in text


@pytest.mark.parametrize("entry", [{"weight": 2}, {"url": "http://b:2", "wieght": 2}])
def test_a_malformed_target_mapping_is_named(tmp_path, entry):
    text = _problems(tmp_path, targets=[entry])
    assert "apis[0].upstream.targets[0]: a target is a URL string or a mapping" in text


def test_a_bad_url_in_a_mapping_is_refused_like_a_string(tmp_path):
    text = _problems(tmp_path, targets=[{"url": "localhost", "weight": 2}])
    assert "apis[0].upstream.targets: 'localhost' is not a valid target" in text


def test_target_sets_and_canary(tmp_path):
    upstream = (
        make_config(
            tmp_path,
            [
                _api(
                    targets=["http://a:1"],
                    target_sets={"beta": {"targets": [{"url": "http://b:2", "weight": 3}]}},
                    canary={
                        "target_set": "beta",
                        "header": {"name": "X-Canary", "value": "on"},
                        "cookie": {"name": "canary", "value": "yes"},
                        "percent": 12.5,
                    },
                )
            ],
        )
        .apis[0]
        .upstream
    )
    assert upstream.target_sets["beta"].weights == (3,)
    assert upstream.canary is not None
    assert upstream.canary.header is not None and upstream.canary.header.name == "x-canary"


def test_canary_names_an_unknown_set(tmp_path):
    text = _problems(tmp_path, targets=["http://a:1"], canary={"target_set": "beta", "percent": 5})
    assert "apis[0].upstream.canary.target_set: 'beta' is not a target set; known: none" in text


def test_canary_needs_a_rule(tmp_path):
    sets = {"beta": {"targets": ["http://b:2"]}}
    text = _problems(
        tmp_path, targets=["http://a:1"], target_sets=sets, canary={"target_set": "beta"}
    )
    assert "a canary needs a header, a cookie or a percent above 0" in text


@pytest.mark.parametrize(
    ("canary", "field"),
    [
        ({"percent": 100.5}, "percent"),
        ({"percent": -1}, "percent"),
        ({"header": {"name": "bad name", "value": "x"}}, "header.name"),
        ({"header": {"name": "x-c", "value": "a\r\nb"}}, "header.value"),
        ({"cookie": {"name": "c", "value": "a;b"}}, "cookie.value"),
    ],
)
def test_canary_rules_are_checked(tmp_path, canary, field):
    sets = {"beta": {"targets": ["http://b:2"]}}
    text = _problems(
        tmp_path,
        targets=["http://a:1"],
        target_sets=sets,
        canary={"target_set": "beta", **canary},
    )
    assert f"apis[0].upstream.canary.{field}" in text


def test_default_is_not_a_set_name(tmp_path):
    text = _problems(
        tmp_path, targets=["http://a:1"], target_sets={"default": {"targets": ["http://b:2"]}}
    )
    assert "apis[0].upstream.target_sets.default: the name is taken by `targets`" in text


def test_a_set_repeats_no_target(tmp_path):
    sets = {"beta": {"targets": ["http://b:2", "http://b:2"]}}
    text = _problems(tmp_path, targets=["http://a:1"], target_sets=sets)
    assert "apis[0].upstream.target_sets.beta.targets: targets are listed twice" in text
