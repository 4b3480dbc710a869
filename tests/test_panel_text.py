"""What the panel's tables show (issue 10, panel fixes): secrets masked, counts not."""

from __future__ import annotations

from nbtracker.widgets._fallback import table_view


def test_only_values_that_look_like_secrets_are_masked() -> None:
    shown = table_view(
        {
            "tokens_seen": 1_000_000, "max_tokens": 512, "tokenizer": "bpe", "token_budget": 7,
            "api_key": "abc123", "wandb": {"api_key": "abc"}, "password": "hunter2",
            "token": "t0k3n", "hf_token": "hf_abcdefghijklmnopqrstuvwxyz",
            "note": "sk-abcdefghijklmnopqrstuvwx", "secret": 42,
        }
    )  # fmt: skip
    assert shown["tokens_seen"] == 1_000_000 and shown["max_tokens"] == 512
    assert shown["tokenizer"] == "bpe" and shown["token_budget"] == 7
    for key in ("api_key", "wandb.api_key", "password", "token", "hf_token", "note"):
        assert shown[key] == "•••", key
    assert shown["secret"] == 42  # a number is never a secret
