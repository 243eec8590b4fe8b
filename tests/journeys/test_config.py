"""``journeys:`` in traitsync.yaml: the compiled steps, connections by ``journey.step``, and located errors."""

from __future__ import annotations

import pytest

from traitsync.activation.config import load_activation
from traitsync.config import load_config_text
from traitsync.definitions import ir, ir_from_dict, ir_to_dict, load_definitions
from traitsync.definitions.journey_model import step_computation_key
from traitsync.errors import ConfigError
from traitsync.validation import full_json_schema

HEAD = "space_id: spa_x\n"
BASIC = HEAD + """\
journeys:
  - key: onboarding
    name: Onboarding
    entry: {performed: {event: Signed Up}}
    steps:
      - key: check
        wait: 5s
        split:
          condition: {performed: {event: Order Completed}}
          if_true: bought
          if_false: not_bought
      - key: channel
        after: bought
        split:
          branches:
            - {key: by_email, condition: {trait: {key: email, op: exists}}}
            - {key: by_sms, query: "trait('phone').exists()"}
      - key: joined
        after: [by_email, by_sms, not_bought]
        wait: 2w
        send: [dst_hook]
destinations:
  - id: dst_hook
    kind: webhook
    settings: {url: "http://127.0.0.1:9/hook"}
    connections:
      - {computation: onboarding.bought, send: [track]}
"""


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        loaded = load_config_text(text, file="traitsync.yaml")
        load_activation(loaded, load_definitions(loaded.document))
    return info.value


def test_steps_compile_to_audiences() -> None:
    defs = load_definitions(load_config_text(BASIC).document)
    key = {s: step_computation_key("onboarding", s) for s in
           ("entry", "bought", "not_bought", "by_email", "by_sms", "joined")}
    assert set(defs) == set(key.values())
    assert defs.resolve("onboarding.joined") == key["joined"] and defs.resolve("onboarding.check") is None
    bought = defs[key["bought"]]
    assert isinstance(bought, ir.JourneyStep)
    assert bought.condition == ir.All((ir.InAudience(key["entry"]),
                                       ir.Performed("Order Completed")))
    assert bought.rule == ir.StepRule("onboarding", "bought", (key["entry"],), wait_seconds=5,
                                      sibling=key["not_bought"])
    assert defs[key["not_bought"]].condition == ir.All((ir.InAudience(key["entry"]),  # type: ignore[union-attr]
                                                        ir.Not(ir.Performed("Order Completed"))))
    joined = defs[key["joined"]]
    assert joined.condition == ir.Any(tuple(ir.InAudience(key[k])  # type: ignore[union-attr]
                                            for k in ("by_email", "by_sms", "not_bought")))
    assert joined.rule.wait_seconds == 14 * 86400  # type: ignore[union-attr]
    assert defs[key["entry"]].options.historical and not joined.options.historical
    assert defs.order.index(key["entry"]) < defs.order.index(key["bought"]) < defs.order.index(key["joined"])
    assert all(ir_from_dict(ir_to_dict(defs[k])) == defs[k] for k in defs)  # --show-ir round trip
    # The query form of a branch means the same as the YAML form.
    assert defs[key["by_sms"]].condition.conditions[1] == ir.TraitCondition("phone", "exists")  # type: ignore


def test_connections_by_journey_step_and_send_steps() -> None:
    loaded = load_config_text(BASIC)
    activation = load_activation(loaded, load_definitions(loaded.document))
    links = activation.destinations[0].links
    assert [(link.computation.key, link.settings.send_identify, link.settings.send_track, link.journey,
             link.journey_exits) for link in links] == [
        (step_computation_key("onboarding", "bought"), False, True, "onboarding", False),
        (step_computation_key("onboarding", "joined"), True, True, "onboarding", False)]
    assert links[0].computation.kind == "audience" and links[0].computation.id.startswith("aud_")
    # A step connected later still gets its current members (the journey's entry is historical).
    assert all(link.settings.historical for link in links)


@pytest.mark.parametrize(("steps", "line", "key", "message"), [
    ("      - {key: a, after: c}\n      - {key: b, after: a}\n      - {key: c, after: [b, entry]}\n", 7,
     "journeys[0].steps[1].after", "journeys cannot loop: a -> b -> c -> a"),
    ("      - {key: a, after: nowhere}\n", 6, "journeys[0].steps[0].after", "unknown step 'nowhere'"),
    ("      - {key: entry}\n", 6, "journeys[0].steps[0].key", "'entry' is the journey's entry step"),
    ("      - {key: a}\n      - {key: a}\n", 7, "journeys[0].steps[1].key", "duplicate step key 'a'"),
    ("      - key: s\n        split: {random: [{key: a, weight: 30}, {key: b, weight: 30}]}\n", 7,
     "journeys[0].steps[0].split.random", "must add up to 100 (they add up to 60)"),
    ("      - key: s\n        split: {random: [" + ", ".join(f"{{key: r{i}, weight: 10}}" for i in range(6))
     + "]}\n", 7, "journeys[0].steps[0].split.random", "at most 5 branches"),
    ("      - key: s\n        split: {if_true: a, if_false: b, condition: {performed: {event: X}}}\n"
     "      - {key: c, after: s}\n", 8, "journeys[0].steps[1].after", "'s' is a split; continue after one of its"),
    ("      - {key: a, wait: 5 days}\n", 6, "journeys[0].steps[0].wait", "bad duration '5 days'"),
    ("      - {key: a, colour: red}\n", 6, "journeys[0].steps[0].colour", "unknown key 'colour'"),
    ("      - {key: a, send: [dst_nope]}\n", 6, "journeys[0].steps[0].send[0]", "unknown destination 'dst_nope'"),
])
def test_errors_name_file_line_and_key(steps: str, line: int, key: str, message: str) -> None:
    text = HEAD + "journeys:\n  - key: j\n    entry: {performed: {event: X}}\n    steps:\n" + steps
    err = error_of(text)
    assert (err.file, err.line, err.key) == ("traitsync.yaml", line, key), str(err)
    assert message in err.detail


def test_unknown_step_in_a_connection() -> None:
    err = error_of(BASIC.replace("onboarding.bought", "onboarding.nope"))
    assert err.key == "destinations[0].connections[0].computation"
    assert "unknown computation 'onboarding.nope'" in err.detail and "onboarding.bought" in err.detail


def test_schema_has_journeys() -> None:
    schema = full_json_schema()
    assert schema["properties"]["journeys"] == {"type": "array", "items": {"$ref": "#/$defs/journey"}}
    step = schema["$defs"]["journey_step"]["properties"]
    assert {"after", "wait", "condition", "query", "split", "send"} <= set(step)
