"""One worked example per command, shown at the end of ``camkit COMMAND --help``."""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, str] = {
    "train": "camkit train --exp-id cam --epochs 7 --lr 2e-3 --schedule onecycle --n-train 9000\n"
    "camkit train --config recipes/lab-cam-cifar10-cpu.json   # a recipe, flags override it",
    "sweep": "camkit sweep --grid lr=1e-4,1e-3,3e-3 --epochs 3 --exp-id lr-sweep",
    "augment": "camkit augment --copies 5 --out aug/train   # masks go to aug/train_masks",
    "study": "camkit study equivariance --config recipes/study-equivariance-cpu.json\n"
    "camkit study wsss --quick --out studies/wsss-quick",
    "evaluate-epochs": "camkit train --exp-id cam --save-every-epoch && camkit evaluate-epochs --run runs/cam",
    "cv": "camkit cv --folds 5 --exp-id cam-cv --epochs 3",
    "extract": "camkit extract --run runs/cam --method cam,grad-cam --out maps_{method}.npz\n"
    "camkit extract --model efficientnet_lite0 --images photos/ --method grad-cam --target pred --out photos.npz",
    "faithfulness": "camkit faithfulness --run runs/cam --method grad-cam,layercam --num 200 --out faith.json",
    "evaluate": "camkit evaluate --maps maps_cam.npz --out scores.json --plots plots",
    "visualize": "camkit visualize --maps maps_cam.npz --num 10 --out vis",
    "prototypes": "camkit prototypes --run runs/ml-gap --out protos.safetensors\n"
    "camkit extract --run runs/ml-gap --method lpcam --prototypes protos.safetensors --out ml.npz",
    "explain": "camkit explain photo.jpg --model efficientnet_lite0 --method cam,grad-cam --out explain\n"
    "camkit explain photos/ --run runs/cam --method layercam",
    "report": "camkit report runs/cam --method cam,grad-cam   # -> runs/cam/report.html",
    "methods": "camkit methods",
    "demo": "camkit demo --quick --out demo-quick",
}


def add_example(parser: argparse.ArgumentParser, name: str) -> None:
    """Put command ``name``'s example at the end of its ``--help`` (kept as written)."""
    text = EXAMPLES.get(name)
    if text is None:
        return
    parser.epilog = "example:\n" + "\n".join("  " + line for line in text.splitlines())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
