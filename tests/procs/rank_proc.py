"""One rank of a shared run, without torch (tests/test_multirank.py): RANK comes from the
environment, no x_label or x_primary is given (their defaults come from it).

    python rank_proc.py ROOT RUN_ID STEPS {finish,die,config,define} [GO_FILE]

``die`` flushes its rows and then kills itself (SIGKILL) without finishing; ``config``
changes the config after init; ``define`` asks for the minimum of ``loss`` in the summary. RUN_ID ``-`` passes no id. With GO_FILE, the rank waits for that file before
logging (so a test can order the ranks)."""

import os
import signal
import sys
import time

import nbtracker as wandb

root, run_id, steps, how = sys.argv[1:5]
go = sys.argv[5] if len(sys.argv) > 5 else None
run = wandb.init(project="ranks", id=None if run_id == "-" else run_id, dir=root, config={"lr": 0.5},
                 settings=wandb.Settings(mode="shared", x_stats_sampling_interval=0.2))  # fmt: skip
print(f"{run._role.label} primary={run._role.primary}", flush=True)
while go and not os.path.exists(go):
    time.sleep(0.02)
if how == "define":
    wandb.define_metric("loss", summary="min")
if how == "config":
    wandb.config.update({"lr": 9.0}, allow_val_change=True)
for i in range(int(steps)):
    wandb.log({"loss": float(i)})
if how == "die":
    run.flush()
    os.kill(os.getpid(), signal.SIGKILL)
wandb.finish()
