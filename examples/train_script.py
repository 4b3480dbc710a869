"""The quickstart's training loop as a plain script (notebook/script parity).

    python train_script.py [--id RUN_ID] [--steps N] [--project NAME]

Runs are stored under ./nbruns (or $NBTRACKER_DIR). Follow one live from a notebook with
``nbtracker.show("script-project/<run_id>")``.
"""

from __future__ import annotations

import argparse
import random
import time

import nbtracker as wandb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="script-project")
    parser.add_argument("--id", default=None, help="run id (default: random)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds per step")
    args = parser.parse_args()

    run = wandb.init(
        project=args.project,
        id=args.id,
        config={"learning_rate": args.lr, "epochs": args.steps},
    )
    offset = random.random() / 5
    for epoch in range(2, args.steps + 2):
        acc = 1 - 2**-epoch - random.random() / epoch - offset
        loss = 2**-epoch + random.random() / epoch + offset
        wandb.log({"acc": acc, "loss": loss})
        time.sleep(args.sleep)
    run.finish()
    print(f"run {run.project}/{run.id} finished: acc={acc:.3f} loss={loss:.3f}")


if __name__ == "__main__":
    main()
