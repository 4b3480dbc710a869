"""A 2-rank DDP training script as users write it for W&B's shared mode (run by torchrun).

argv: <root> <run id> <shared|rank0>. ``shared``: every rank logs into one run;
``rank0``: only rank 0 logs (the other ranks' init is mode="disabled")."""

import os
import sys

import torch
import torch.distributed as dist

import nbtracker as wandb

root, run_id, how = sys.argv[1:4]
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
if how == "shared":
    settings = wandb.Settings(
        mode="shared",
        x_primary=rank == 0,
        x_label=f"rank_{rank}",
        x_stats_sampling_interval=0.2,
        **({} if rank == 0 else {"x_update_finish_state": False}),
    )
    run = wandb.init(project="ddp", id=run_id, dir=root, config={"lr": 0.1, "world": 2},
                     settings=settings)  # fmt: skip
else:  # the one-line switch: only rank 0 logs
    run = wandb.init(project="ddp", id=run_id, dir=root, config={"lr": 0.1},
                     mode="online" if rank == 0 else "disabled",
                     settings=wandb.Settings(x_stats_sampling_interval=0.2))  # fmt: skip
x = torch.arange(32, dtype=torch.float32).reshape(8, 4) / 32 + rank
y = x.sum(1, keepdim=True)
for _ in range(30):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    wandb.log({"loss": loss.item(), "rank": rank})
print(f"rank {rank} of {dist.get_world_size()} done, pid {os.getpid()}", flush=True)
dist.barrier()
wandb.finish()
dist.destroy_process_group()
