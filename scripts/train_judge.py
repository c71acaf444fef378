"""Train the judge shipped in `course_utils/weights/judge` and print its held-out accuracy.

    python scripts/train_judge.py --ckpt runs/judge

Seeded; resumable per epoch. Measured for the shipped weights: 2-core CPU, 1 thread (beside another
training job), 11 min
(900 steps at batch 64 on 8,000 pre-rendered scenes, with blur/jitter/noise augmentation).
"""
import argparse, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_utils.toyworld import training
from course_utils.toyworld.judge import JUDGE_PATH


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="runs/judge")
    ap.add_argument("--out", default=str(JUDGE_PATH))
    ap.add_argument("--epochs", type=int, default=6)
    a = ap.parse_args(argv)
    Path(a.ckpt).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    judge = training.train_judge(a.ckpt, epochs=a.epochs)
    judge.save(a.out)
    held = range(training.HELD_OUT + 1000, training.HELD_OUT + 2000)
    for aug in (False, True):
        acc = training.judge_accuracy(judge, held, augmented=aug)
        print(f"held-out accuracy ({'augmented' if aug else 'clean'} renders, n=1000):",
              " ".join(f"{k}={v:.3f}" for k, v in acc.items()), f"| min {min(acc.values()):.3f}")
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
