"""CFP (Celebrities in Frontal-Profile) verification with its own protocol: frontal-frontal (FF) and
frontal-profile (FP), 10 folds of 350 same + 350 different pairs, accuracy with each fold's threshold chosen
on the other nine (as LFW View 2). Evaluation only: CFP's 500 people are excluded from the training collection.

Read straight from the ``fetch``ed snapshot (zhangjunh/DR-GAN-by-pytorch @ 12de9e08, ``cfp-dataset/``). Each
image's face is found by the YuNet teacher on a black-padded canvas (as ``iznet data build`` does; profile
faces it misses fall back to the picture's centre square) and cut with the project's 1.3x box crop.

    python scripts/cfp_eval.py -e src/iznet/assets/embedder.pt --json runs/cfp.json [--dlib]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collection_sources import Repo  # noqa: E402

REPO, COMMIT, ROOT = "zhangjunh/DR-GAN-by-pytorch", "12de9e083449d5ab0b6cd63afc8df697bd7f63c2", "cfp-dataset/"


def load_protocol(repo: Repo):
    """{list: {index: image path in the snapshot}}, {FF|FP: [(fold, i, j, same)]}."""
    files = {rel: sha for rel, sha, _ in repo.list(ROOT)}
    by_id = {}
    for rel in files:
        parts = rel.split("/")
        if len(parts) == 6 and parts[:2] == ["Data", "Images"] and parts[5].endswith(".jpg"):
            by_id[f"{parts[3]}/{parts[4]}/{parts[5]}"] = rel
    lists = {}
    for key in ("F", "P"):
        text = repo.read([files[f"Protocol/Pair_list_{key}.txt"]])[files[f"Protocol/Pair_list_{key}.txt"]].decode()
        lists[key] = {}
        for line in text.split("\n"):
            if line.strip():
                idx, path = line.split()
                lists[key][int(idx)] = by_id["/".join(path.split("/")[-3:])]
    pairs = {}
    for proto, (a, b) in (("FF", ("F", "F")), ("FP", ("F", "P"))):
        rows = []
        for fold in range(1, 11):
            for kind in ("same", "diff"):
                rel = f"Protocol/Split/{proto}/{fold:02d}/{kind}.txt"
                for line in repo.read([files[rel]])[files[rel]].decode().split():
                    i, j = (int(v) for v in line.split(","))
                    rows.append((fold - 1, lists[a][i], lists[b][j], kind == "same"))
        pairs[proto] = rows
    return files, pairs


def find_faces(repo: Repo, files: dict, rels: list[str], teacher_path: Path):
    """Each image's face as the build finds it: ({rel: RGB image}, {rel: box}, {rel: landmarks or None}, how many
    the teacher missed, whose centre square stands in)."""
    from iznet.data.collection import BuildConfig, detect_one
    from iznet.data.images import load_image_bytes
    from iznet.detect.teachers import YuNetDetector

    blobs = repo.read([files[r] for r in rels])
    teacher = YuNetDetector(teacher_path, score_threshold=0.3)
    cfg = BuildConfig(min_score=0.3, min_eye_px=0)
    imgs, boxes, points, fallback = {}, {}, {}, 0
    for r in rels:
        img = load_image_bytes(blobs[files[r]], r)
        got = detect_one(img, teacher, cfg)
        if isinstance(got, str):
            h, w = img.shape[:2]
            s = min(h, w) / 1.3
            box, lm = np.array([(w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2]), None
            fallback += 1
        else:
            box, lm = got[0], got[1]
        imgs[r], boxes[r], points[r] = img, box, lm
    return imgs, boxes, points, fallback


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--embedder", action="append", required=True, help="repeatable")
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--teacher", type=Path, default=Path("../shared/models/face_detection_yunet_2026may.onnx"))
    ap.add_argument("--dlib", action="store_true", help="also dlib's descriptor on the same boxes")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from iznet.data.align import face_pixels
    from iznet.eval.verification import auc, kfold_accuracy
    from iznet.loading import load_embedder
    from iznet.recognize.pipeline import crops_to_batch

    repo = Repo(a.mirrors, REPO, COMMIT)
    files, pairs = load_protocol(repo)
    needed = sorted({p for rows in pairs.values() for _, x, y, _ in rows for p in (x, y)})
    imgs, boxes, points, fallback = find_faces(repo, files, needed, a.teacher)
    index = {r: k for k, r in enumerate(needed)}
    systems = {}
    for spec in a.embedder:
        emb = load_embedder(spec=spec)
        size = int(emb.input_size)
        conv = getattr(emb, "face_crop", "box")  # aligned embedders get the teacher's landmarks (box crop without)
        E = emb.embed(crops_to_batch([face_pixels(imgs[r], boxes[r], points[r], size, conv) for r in needed]),
                      batch_size=64)
        systems[spec] = np.asarray(E, dtype=np.float64)
    if a.dlib:
        from iznet.reference.dlib_ref import DlibResNetEncoder

        enc = DlibResNetEncoder()
        systems["dlib"] = np.asarray([enc.encode(imgs[r], boxes[r][None])[0] for r in needed], dtype=np.float64)
    out = {"source": f"{REPO} @ {COMMIT}", "images": len(needed), "teacher_missed": fallback, "results": {}}
    for name, E in systems.items():
        for proto, rows in pairs.items():
            i = np.array([index[x] for _, x, _, _ in rows])
            j = np.array([index[y] for _, _, y, _ in rows])
            d = np.linalg.norm(E[i] - E[j], axis=1)
            same = np.array([s for *_, s in rows])
            folds = np.array([f for f, *_ in rows])
            k = kfold_accuracy(d, same, folds)
            out["results"][f"{name}/{proto}"] = {"accuracy": k["mean"], "std": k["std"], "auc": auc(d, same)}
            print(f"{name} {proto}: accuracy {100 * k['mean']:.2f}% ± {100 * k['std']:.2f}, AUC {auc(d, same):.4f}")
    print(f"{len(needed)} images; the teacher missed {fallback} (centre square used)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
