"""What an ImageNet epoch of Horovod's ``pytorch_imagenet_resnet50.py`` pays outside its steps.

Run: ``python -m benchmarks.epoch_overhead [--repeats 3] [--samples 1281167] [--workers 4]``
(needs torch and Pillow; minutes on a 2-core machine).

The example ABCI ran (``horovod/horovod`` v0.22.0 ``examples/pytorch/pytorch_imagenet_resnet50.py``,
per ``aistabci/abci2.0benchmark`` ``imagenet/pytorch+horovod.def`` and ``imagenet/multi_run.sh``)
builds its loaders with ``num_workers=4`` and the ``forkserver`` context and no persistent
workers, so every epoch starts the train loader's and the validation loader's workers again:
``Process.start`` pickles the dataset (``ImageFolder``: one ``(path, class)`` tuple per image,
1,281,167 for ImageNet-1k train) once per worker in the training process, each worker unpickles
it, and the first batch is one worker decoding and transforming ``batch`` JPEGs while the GPU
waits. None of this shrinks with the number of ranks: it is a fixed cost per epoch, which the
whole-run time ABCI reports includes (``multi_parse_log.py``: last minus first TensorBoard
event) and a steady-state step does not.

Measured here, each a median over ``--repeats``:

* ``dumps_s`` / ``loads_s``: pickling the train dataset once in one process, and unpickling it
  (the part of a worker's start that grows with the dataset; ``Process.start`` pays
  ``dumps_s`` once per worker, one worker after the other, in the training process);
* ``start_s``: ``iter(loader)`` to the first batch for a dataset shaped like ``ImageFolder``
  whose items are free (only the workers' start-up: pickling, unpickling, the queues);
* ``first_batch_s``: one worker's decode + ``RandomResizedCrop(224)`` + flip + ``ToTensor`` +
  ``Normalize`` of ``--batch`` JPEGs of ImageNet's mean size (about 400 x 350, quality 90),
  done with Pillow and numpy as torchvision does it;
* the same start-up for the validation set (50,000 images).

Prints the per-epoch fixed cost: both loaders' start-up plus one first batch each. The
machine this runs on is not ABCI's (2 x Xeon Gold 6148 per node); on a shared 2-core machine
the figure is an order of magnitude, quoted as such in ``benchmarks/published/README.md``.
"""

from __future__ import annotations

import io
import statistics
import time

import numpy as np
# At module level, as the example imports it: the forkserver preloads ``__main__``, so its
# workers are forked with torch already imported, and only the dataset's pickling is paid.
import torch
import torch.utils.data as tud

from vocab.argtypes import OneLineParser, whole

IMAGENET_TRAIN = 1_281_167
IMAGENET_VAL = 50_000


class FolderLike:
    """A map-style dataset holding what ``torchvision.datasets.ImageFolder`` holds (samples,
    imgs, targets, classes), whose items cost nothing: only the workers' start-up is timed."""

    def __init__(self, n: int, root: str = "/local/imagenet/train") -> None:
        self.root = root
        self.classes = [f"n{c:08d}" for c in range(1000)]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = [(f"{root}/n{k % 1000:08d}/n{k % 1000:08d}_{k:06d}.JPEG", k % 1000)
                        for k in range(n)]
        self.imgs = self.samples
        self.targets = [s[1] for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        return torch.zeros(1), self.targets[index]


def pickle_s(n: int) -> tuple[float, float]:
    """Seconds to pickle and to unpickle a :class:`FolderLike` of ``n`` samples."""
    import pickle
    data = FolderLike(n)
    t0 = time.perf_counter()
    blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    t1 = time.perf_counter()
    pickle.loads(blob)
    return t1 - t0, time.perf_counter() - t1


def loader_start_s(n: int, workers: int, batch: int) -> float:
    """Seconds from ``iter(loader)`` to its first batch (forkserver workers, as the example)."""
    loader = tud.DataLoader(FolderLike(n), batch_size=batch, num_workers=workers,
                            pin_memory=False, multiprocessing_context="forkserver")
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    elapsed = time.perf_counter() - t0
    del it
    return elapsed


def jpeg(rng: np.random.Generator, width: int = 400, height: int = 350) -> bytes:
    """A JPEG of ImageNet's mean size with image-like content (smooth noise), quality 90."""
    from PIL import Image
    base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((width, height), Image.BILINEAR)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


def first_batch_s(batch: int, rng: np.random.Generator) -> float:
    """One worker's decode + train transforms of ``batch`` JPEGs (Pillow + numpy)."""
    from PIL import Image
    blobs = [jpeg(rng) for _ in range(8)]
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    t0 = time.perf_counter()
    for k in range(batch):
        img = Image.open(io.BytesIO(blobs[k % len(blobs)])).convert("RGB")
        w, h = img.size
        scale, ratio = rng.uniform(0.08, 1.0), np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw = int(min(w, round(np.sqrt(w * h * scale * ratio))))
        ch = int(min(h, round(np.sqrt(w * h * scale / ratio))))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = img.crop((x, y, x + cw, y + ch)).resize((224, 224), Image.BILINEAR)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        _ = ((arr - mean) / std).transpose(2, 0, 1).copy()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m benchmarks.epoch_overhead",
                      description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=whole(1, 50, what="repeats"), default=3)
    p.add_argument("--samples", type=whole(1, 10**8, what="training samples"),
                   default=IMAGENET_TRAIN)
    p.add_argument("--workers", type=whole(1, 64, what="loader workers"), default=4)
    p.add_argument("--batch", type=whole(1, 4096, what="samples per batch"), default=96)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    pickled = [pickle_s(args.samples) for _ in range(args.repeats)]
    dumps, loads = (statistics.median(x[i] for x in pickled) for i in (0, 1))
    train = [loader_start_s(args.samples, args.workers, args.batch) for _ in range(args.repeats)]
    val = [loader_start_s(IMAGENET_VAL, args.workers, args.batch) for _ in range(args.repeats)]
    batch = [first_batch_s(args.batch, rng) for _ in range(args.repeats)]
    s_train, s_val, s_batch = (statistics.median(x) for x in (train, val, batch))
    total = s_train + s_val + 2 * s_batch
    print(f"train dataset pickle: dumps {dumps:.2f} s, loads {loads:.2f} s (median); "
          f"{args.workers} workers: {args.workers * dumps + loads:.1f} s of every epoch's start")
    print(f"train loader start ({args.samples} samples, {args.workers} workers): "
          f"median {s_train:.2f} s (runs {', '.join(f'{x:.2f}' for x in train)})")
    print(f"val loader start ({IMAGENET_VAL} samples): median {s_val:.2f} s")
    print(f"first batch, one worker, {args.batch} JPEGs: median {s_batch:.2f} s")
    print(f"fixed cost per epoch (both starts + one first batch each): {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
