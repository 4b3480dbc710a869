"""Quickstart: the W&B quickstart training loop, tracked locally with nbtracker.

Run it:  python examples/quickstart.py
It logs a few simulated experiments, then prints where the runs went and shows them.
"""

import math
import random

import nbtracker as wandb  # code written for the W&B API runs unchanged

for lr in (0.01, 0.003, 0.001):
    run = wandb.init(
        project="quickstart",
        config={"learning_rate": lr, "architecture": "CNN", "dataset": "CIFAR-100", "epochs": 10},
        tags=["example"],
    )
    offset = random.random() / 5
    for epoch in range(2, wandb.config.epochs):
        acc = 1 - 2**-epoch - random.random() / epoch - offset + math.log10(lr * 1000) / 10
        loss = 2**-epoch + random.random() / epoch + offset
        wandb.log({"acc": acc, "loss": loss})
    run.summary["test_acc"] = acc
    wandb.finish()

api = wandb.Api()
print(f"runs stored under {api.store.root} (catalog: {api.store.catalog.path})")
df = api.runs("quickstart").to_pandas()
print(
    df[
        ["run_id", "name", "state", "config.learning_rate", "summary.acc", "summary.loss"]
    ].to_string(index=False)
)
best = api.runs("quickstart", order="-summary_metrics.acc")[0]
print(f"\nbest run {best.name} ({best.id}): acc={best.summary['acc']:.3f}; its history:")
print(best.history(keys=["acc", "loss"]).to_string(index=False))
print("\nSQL over all runs:")
print(
    wandb.sql(
        "SELECT r.name, max(h.value) AS best_acc FROM history h JOIN runs r USING (project, run_id) "
        "WHERE h.key = ? AND h.project = ? GROUP BY r.name ORDER BY best_acc DESC",
        ["acc", "quickstart"],
    ).to_string(index=False)
)
