"""Materialise the public face-identity sources of the training collection as identity folders.

Each source is read from a bare git snapshot (brought with the search tool's ``fetch``; default
``/work/.mirror/<owner>+<name>/repo``) at a pinned commit, and written as ``OUT/<source>/<person>/<file>``
plus ``OUT/<source>/people.csv`` (folder, name, gender, group) and ``OUT/<source>/SOURCE.json`` (repo,
commit, path, counts). ``iznet data build`` turns these folders into the collection's packs (docs/data.md).
Nothing here is committed: OUT is an ignored folder (default ``collection/raw``).

    python scripts/collection_sources.py --out collection/raw [--mirrors /work/.mirror] [--only fiw,pins] [--skip-written]
        [--count-only]
    python scripts/collection_sources.py --out collection/raw --merge celeba_v5=celeba10k,celeba30k

``--merge NAME=A,B`` links the written sources A and B into one identity folder ``OUT/NAME`` (a person in both
gets one folder): two samples of the same CelebA people are one source to ``iznet data build``, whose
identities are ``source/folder``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

# name, repo, commit, path prefix; see each reader below for how a path becomes a person.
SOURCES = {
    "fiw": ("samirmehd1yev/kinship_detection", "f14d31e7ee4549ee93b32c4e094a679be3ccf6ee",
            "data/raw/fiw/train/train-faces/"),
    "fiw_kaggle": ("0tist/kinship-detection", "0e8020395120b38d7d90a58861554e5ff59bd94d", "train/"),
    "pins": ("syauqijan/Algeo02-21001", "b9ab731080ac29673d489cb6c4cf763e74e2a496", "test/dataset/"),
    # Large Age-Gap (Bianco 2017): each celebrity young (y/) and adult; academic, non-commercial use only.
    "lag": ("loiswjj/Face_Recognition", "d6a2967d5b081c97f5a4e4c6b67890ff2014de03",
            "FaceDetection/FaceDetection/data/Pic/"),
    # A CelebA subset (whole photos); identities from the official identity_CelebA.txt in the same repo.
    "celeba": ("matush97/faceRecognition", "e7ba6c0951ace22b43ef32fc903a7dae1babe55d", "Celeb/"),
    # CASIA-FaceV5 subjects 000-039 (Chinese; 5 BMPs each, 168x193); the repo's HEAD deleted the folders.
    "casia5": ("Liuluotao/PCA-SVM-", "5c1ac02eec0cabeac86b55e2db4d83810ec454fb", ""),
    # Chinese and Japanese public figures (portraits from thefamouspeople.com); korean/ is left out.
    "asianfaces": ("bigblockofice/AsianFaces", "14281d93073deb592a4b25fba6efd54af02a1dc2", "faces_data/"),
    # Pakistani politicians: cleaned/ (MTCNN single-face crops that passed the repo's own Facenet512 identity
    # check), not raw/ (the web crawl: group photos, news graphics and other people; cleaned/ is a subset of it).
    "pakistani1": ("zohairmaken/Pakistani-Politician-Image-Classification-using-CNNs",
                   "2a7deac6f894c8defc5e4726b055eaa4a2895964", "data/cleaned/"),
    "pakistani2": ("moonlightaliza/pakistani-politician-cnn-classifier", "9c2ab747d153bd958f9e3df2bac3803bc0afc0ae",
                   "dataset/raw/"),
    # Hinatazaka46 members, 224x224 face crops (face/; data/ holds the whole photos).
    "hinatazaka": ("ryotoitoi/Hinatazaka_recognition", "daa9fc8cd1cca75ee98e6431aa2b074c2f23c629", "face/"),
    # Nogizaka46 members, 150x150 aligned crops.
    "nogizaka": ("ShozenD/CNN-Nogizaka46", "b762bf58c3fda2c15fd32a714719fb03b5986063", "Input_Data_NoChange/"),
    "bollywood": ("SambhavMishra8319/Indian-Celebrity-Face-Recognition", "e80ae35a0a7d918038b041ebb7fed471fab740be",
                  "datasets/bollywood_actor_images/"),
    # Found 2026-12-06 (docs/data.md, "Found for a next collection"): 100 Indian film actors, 64x64 face crops.
    "bollywood100": ("ARPIT-SINGHAL-22102003/Bollywood-Celebrity-Resemblence",
                     "71b7e95762923987473eed0a9c07b68106c0ea3f", "data/all_actors/"),
    # CelebA 000001-010000, aligned crops at half size (89x109); identities from the celeba source's
    # identity_CelebA.txt; identities the celeba source already has are left out (one person, one identity).
    "celeba10k": ("karthikSingireddy/cs389-hw4", "702f8f7bdf59386959872d52879faac800f20ab1", "celebA/"),
    # FG-NET ageing database: 82 people, each from childhood to adulthood, scanned photos (many greyscale).
    "fgnet": ("TAKENISHI-Kaito/allAgesPredictSystem", "bf8d93b62a326a4ac440478413b0b58111a39a1b", "images/"),
    # Pakistani actors and singers, web photos (uncleaned: the build keeps the confident face nearest the centre).
    "pakistani_celebs": ("whoisusmanali/Pakistani_Celebrity_Image_Classifier_CNN",
                         "55fe4ca4e4b3ddcecb92c43e4445471a99296a4d", "Dataset/"),
    # Found 2026-12-07: 30,000 CelebA aligned crops sampled over the whole numbering, squashed to 64x64 (written
    # un-squashed to 64x78); the files celeba10k already has (000001-010000) and the celeba source's people left out.
    "celeba30k": ("fulvio9999/diffusion-face-generator", "72695d9dc74bb7939abbd35b07645870c4d53f82", "dataset/"),
    # Found 2026-12-07 (stop 55; docs/data.md): people of populations the collection lacks, many photos each.
    # Turkish politicians, actors and singers (and the repo's author), 512x512 face crops; not at HEAD.
    "turkish": ("mustafakarakas61/Face-Recognition", "c7b37e333d9dad91ba50c95ee911a20f81d77b45",
                "src/main/datasets-split/faceset_v1/"),
    # Indian students (first names), phone photos; the same repository at another commit.
    "indian_students": ("mustafakarakas61/Face-Recognition", "e7ae8277b25213e732c09687994cf3867e6b7948",
                        "datasets/set_2/"),
    # Indonesian students (first names) in two layouts, filed by ethnic group; phone photos and 236x236 crops.
    "indonesian1": ("GeraldinGysrawa/Pengembangan-Sistem-Pengenalan-Wajah-dan-Deteksi-Suku-Menggunakan-Computer-Vision",
                    "f1130bac4c8bc4c5f2feca39a102fc0dbe96effd", ""),
    "indonesian2": ("Naufalhff/DeteksiWajahPCD", "be23b6fcd81bd3ae9c1959db58912e87a4a24eb5", "dataset/"),
    # Nogizaka46 members (and their producer), 224x224 crops (MIT); not at HEAD. Named: the members the
    # nogizaka source has merge with it by name.
    "nogizaka2": ("yu8muraka3/DeepNogizaka", "f25147c122b12039d70af7da28e54bffe977820d", "photo_select_out/"),
}
CELEBA10K_LAST = 10000  # celeba10k's files are CelebA 000001 .. 010000
CELEBA_ASPECT = 218 / 178  # height / width of CelebA's aligned crops
# CFP is evaluation-only: only its list of names is taken, to exclude its people from training.
CFP = ("zhangjunh/DR-GAN-by-pytorch", "12de9e083449d5ab0b6cd63afc8df697bd7f63c2", "cfp-dataset/Data/list_name.txt")
# .bmp (casia5) and .webp (pakistani2) are read by iznet data build (PIL); no older source has such files.
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FIW_RE = re.compile(r"^(F\d{4})/(MID\d+)/([^/]+)$")
# Every K-pop idol stays out of training (they are a hidden test's people): AsianFaces' korean/ folder and these.
ASIANFACES_DROPPED = {"jackson-wang": "K-pop idol (GOT7)", "kris-wu": "K-pop idol (former EXO member)",
                      "lu-han": "K-pop idol (former EXO member)", "hirai-momo": "K-pop idol (TWICE)"}
# Hu Yitian is filed under two spellings; the site's names lost their non-ASCII letters (ō in Shinzō), and Shinzo
# Abe is in LFW and CFP, whose names the build excludes.
ASIANFACES_ALIASES = {"hu-yi-tian": "hu-yitian", "shinz-abe": "shinzo-abe"}
# Spelt as LFW (Fazal-ur-Rehman, the same man) and CFP (Shahrukh Khan) spell them, so the build's exclusions match.
# Keys are folder names in lower case.
SPELLING = {"fazlur_rehman": "Fazal ur Rehman", "shah_rukh_khan": "Shahrukh Khan", "ajay_devgn": "Ajay Devgan",
            "humayo saeed": "Humayun Saeed"}
# The folders give first names only; these are the Hinatazaka46 members of those names (repo of 2021).
HINATAZAKA = {"akari": "Akari Nibu", "kyoko": "Kyoko Saito", "miho": "Miho Watanabe", "miku": "Miku Kanemura",
              "shiho": "Shiho Kato"}
# Nogizaka46 file-name prefixes; the repo's aligned/<Japanese name>/ holds the same blobs, which fixes the names.
# Its nanami/ and nanase/ folders (train and test) hold each other's files: the prefix is the person.
# DeepNogizaka's folders (photo_select_out/<key>_out/); ikoma is left out: Rina Ikoma was also an AKB48 member,
# and AKB48-family idols stay out of training.
NOGIZAKA2 = {"asuka": "Asuka Saito", "ikuta": "Erika Ikuta", "maiyan": "Mai Shiraishi", "miona": "Miona Hori",
             "nanase": "Nanase Nishino", "yasushi": "Yasushi Akimoto"}
NOGIZAKA2_DROPPED = {"ikoma": "also an AKB48 member (AKB48-family idols stay out of training)"}
NOGIZAKA = {"asuka": "Asuka Saito", "erika": "Erika Ikuta", "mai": "Mai Shiraishi", "nanami": "Nanami Hashimoto",
            "nanase": "Nanase Nishino"}
WOMEN = {  # of the named politicians, actors and singers (the others are men)
    "Maryam Nawaz", "Hina Rabbani Khar", "Mahira Khan", "Ayza Khan", "Saba Qamar", "Sajal Ali", "Ayesha Umar",
    "Aishwarya Rai", "Alia Bhatt", "Ameesha Patel", "Amrita Rao", "Amy Jackson", "Anushka Sharma", "Anushka Shetty",
    "Asin", "Bhumi Pednekar", "Bipasha Basu", "Deepika Padukone", "Disha Patani", "Esha Gupta", "Huma Qureshi",
    "Ileana Dcruz", "Jacqueline Fernandez", "Juhi Chawla", "Kajal Aggarwal", "Kajol", "Kangana Ranaut",
    "Kareena Kapoor", "Karisma Kapoor", "Katrina Kaif", "Kiara Advani", "Kriti Kharbanda", "Kriti Sanon",
    "Lara Dutta", "Madhuri Dixit", "Mrunal Thakur", "Nargis Fakhri", "Nushrat Bharucha", "Parineeti Chopra",
    "Pooja Hegde", "Prachi Desai", "Preity Zinta", "Priyanka Chopra", "Rani Mukerji", "Richa Chadda",
    "Sara Ali Khan", "Shilpa Shetty", "Shraddha Kapoor", "Shruti Haasan", "Sonakshi Sinha", "Sonam Kapoor",
    "Taapsee Pannu", "Tabu", "Tamannaah Bhatia", "Vaani Kapoor", "Vidya Balan", "Yami Gautam", "Zareen Khan"}


def snapshot_dir(mirrors: Path, repo_name: str) -> Path | None:
    """The git directory of ``repo_name``'s fetched snapshot under ``mirrors``, or None when it is not there."""
    git_dir = mirrors / repo_name.replace("/", "+") / "repo"
    for d in (git_dir, git_dir / ".git"):  # a bare snapshot, or one brought as a work tree
        if (d / "HEAD").exists():
            return d
    return None


class Repo:
    def __init__(self, mirrors: Path, repo_name: str, commit: str):
        git_dir = snapshot_dir(mirrors, repo_name)
        if git_dir is None:
            sys.exit(f"no git snapshot of {repo_name} under {mirrors}: bring it with the search tool's fetch first")
        self.git_dir, self.commit = git_dir, commit

    def _git(self, *args: str, input: bytes | None = None) -> bytes:
        # core.quotepath off: paths with non-ASCII letters come as UTF-8, not as quoted octal escapes
        return subprocess.run(["git", "-c", "core.quotepath=off", f"--git-dir={self.git_dir}", *args], check=True,
                              capture_output=True, input=input).stdout

    def list(self, prefix: str) -> list[tuple[str, str, int]]:
        """(path relative to prefix, blob id, size or -1 when absent) under ``prefix``."""
        out = []
        spec = ["--", prefix] if prefix else []  # git refuses an empty pathspec
        for line in self._git("ls-tree", "-r", "-l", self.commit, *spec).decode().splitlines():
            meta, path = line.split("\t", 1)
            _, kind, sha, size = meta.split()
            if kind == "blob":
                out.append((path[len(prefix):], sha, int(size) if size.isdigit() else -1))
        return out

    def read(self, shas: list[str]) -> dict[str, bytes | None]:
        """Blob contents by id (None for a blob missing from the snapshot)."""
        data = self._git("cat-file", "--batch", input="".join(s + "\n" for s in shas).encode())
        out, pos = {}, 0
        for sha in shas:
            end = data.index(b"\n", pos)
            head = data[pos:end].decode().split()
            pos = end + 1
            if len(head) < 3 or head[1] == "missing":
                out[sha] = None
                continue
            n = int(head[2])
            out[sha] = data[pos:pos + n]
            pos += n + 1
        return out


def _is_image(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith("._") and base.lower().endswith(IMAGE_EXT)


def fiw_people(repo: Repo, prefix: str) -> dict[str, tuple[str, str]]:
    """(family, MID) -> (first name, gender) from each family's mid.csv."""
    names = {}
    for rel, sha, _ in repo.list(prefix):
        if rel.endswith("/mid.csv") and "/" not in rel[:-len("/mid.csv")]:
            fam = rel.split("/")[0]
            text = repo.read([sha])[sha]
            if text is None:
                continue
            for row in csv.DictReader(io.StringIO(text.decode("utf-8", "replace"))):
                mid = row.get("MID", "").strip()
                if mid.isdigit():
                    names[(fam, f"MID{mid}")] = (row.get("Name", "").strip(), row.get("Gender", "").strip().lower())
    return names


def celeba_identities(repo: Repo) -> dict[str, str]:
    """CelebA file name -> identity number, from the official identity_CelebA.txt."""
    sha = [s for rel, s, _ in repo.list("identity_CelebA.txt")][0]
    out = {}
    for line in repo.read([sha])[sha].decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = parts[1]
    return out


def celeba_taken(mirrors: Path) -> tuple[dict[str, str], set[str]]:
    """identity_CelebA.txt (from the celeba source's snapshot) and the identities that source holds."""
    repo_name, commit, prefix = SOURCES["celeba"]
    repo = Repo(mirrors, repo_name, commit)
    identity = celeba_identities(repo)
    held = {identity[rel] for rel, _, _ in repo.list(prefix) if rel in identity}
    return identity, held


def _words(text: str) -> str:
    """``"imran_khan"``, ``"ai-weiwei"`` -> ``"Imran Khan"``, ``"Ai Weiwei"``."""
    return " ".join(w.capitalize() for w in re.split(r"[-_\s]+", text) if w)


def _named(name: str, base: str, gender: str) -> tuple[str, str, tuple[str, str, str]]:
    """A named person's (folder ``First_Last``, file, people.csv row); the group is the folder."""
    folder = name.replace(" ", "_")
    return folder, base, (name, gender, folder)


# The readers of the newer sources: path under the prefix -> (person folder, file, (name, gender, group)),
# or the reason it is skipped.
def read_casia5(rel: str):
    m = re.fullmatch(r"(\d{3})/([^/]+)", rel)
    if not m:
        return "not NNN/file"
    folder = f"casia5_{m[1]}"
    return folder, m[2], ("", "", folder)


def read_asianfaces(rel: str):
    country, _, base = rel.partition("/")
    if country == "korean":
        return "korean/ folder (K-pop idols are kept out of training)"
    if country not in ("chinese", "japanese") or "/" in base:
        return "not chinese/ or japanese/<name>[-N].jpg"
    stem = re.sub(r"(-\d+)+$", "", base.rsplit(".", 1)[0])  # also kazuchika-okada-52883-1 -> kazuchika-okada
    stem = ASIANFACES_ALIASES.get(stem, stem)
    if stem in ASIANFACES_DROPPED:
        return "K-pop idol (see dropped_people)"
    return _named(_words(stem), base, "")


def read_name_folders(rel: str):
    """``<first_last>/<file>`` (pakistani1, pakistani2, bollywood); ``aug_*`` files are augmented copies."""
    top, _, base = rel.partition("/")
    if not top or not base or "/" in base:
        return "not <name>/file"
    if base.startswith("aug_"):
        return "augmented copy (aug_*)"
    name = SPELLING.get(top.lower()) or _words(top)
    return _named(name, base, "f" if name in WOMEN else "m")


def read_hinatazaka(rel: str):
    top, _, base = rel.partition("/")
    if top not in HINATAZAKA or "/" in base:
        return "not <member>/file"
    return _named(HINATAZAKA[top], base, "f")


def read_nogizaka(rel: str):
    m = re.fullmatch(r"(?:train|test)/[a-z]+/(([a-z]+)\.\d+\.jpg)", rel)
    if not m or m[2] not in NOGIZAKA:
        return "not {train,test}/<folder>/<member>.N.jpg"
    return _named(NOGIZAKA[m[2]], m[1], "f")


def read_fgnet(rel: str):
    """``NNNAxx[a|b].JPG``: subject NNN at age xx."""
    m = re.fullmatch(r"((\d{3})A\d{2}[ab]?\.jpg)", rel, flags=re.IGNORECASE)
    if not m:
        return "not NNNAxx.JPG"
    folder = f"fgnet_{m[2]}"
    return folder, m[1], ("", "", folder)


def ascii_name(text: str) -> str:
    """A person's name in ASCII letters, as name lists spell them (``"Recep Tayyip Erdoğan"`` -> ``"Recep Tayyip
    Erdogan"``, LFW's spelling; the dotless ı becomes i)."""
    import unicodedata

    text = text.replace("ı", "i").replace("İ", "I")
    return " ".join(unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().split())


def read_turkish(rel: str):
    """``{train,validation}/<Full Name>/<file>``: one person in both parts."""
    m = re.fullmatch(r"(train|validation)/([^/]+)/([^/]+)", rel)
    if not m:
        return "not {train,validation}/<name>/file"
    return _named(ascii_name(m[2]), f"{m[1]}_{m[3]}", "")


def first_name_folders(prefix: str, *patterns: str):
    """A reader for sources of first names: the first of ``patterns`` (regexes over the path) that matches gives
    the name as group ``name`` (case folded: one student filed under two ethnic groups is one person), the file
    as ``file`` and the folder it sits in as ``where`` (kept in the file name, so equal names do not collide)."""
    def read(rel: str):
        m = next((m for m in (re.fullmatch(p, rel) for p in patterns) if m), None)
        if m is None:
            return "not the source's <name> layout"
        folder = f"{prefix}_{m['name'].lower()}"
        return folder, f"{m['where']}_{m['file']}", ("", "", folder)
    return read


def read_nogizaka2(rel: str):
    m = re.fullmatch(r"([a-z]+)_out/([^/]+)", rel)
    if not m:
        return "not <member>_out/file"
    if m[1] in NOGIZAKA2_DROPPED:
        return "AKB48-family member (see dropped_people)"
    if m[1] not in NOGIZAKA2:
        return "not a known member folder"
    return _named(NOGIZAKA2[m[1]], m[2], "m" if m[1] == "yasushi" else "f")


def celeba10k_reader(identity: dict[str, str], taken: set[str], skip_upto: int = 0):
    """CelebA file names -> identities, leaving out the identities of ``taken`` (another source has them) and
    the files numbered up to ``skip_upto`` (another source has that range)."""
    def read(rel: str):
        if "/" in rel or rel not in identity:
            return "not in identity_CelebA.txt"
        if rel[:6].isdigit() and int(rel[:6]) <= skip_upto:
            return f"file number up to {skip_upto:06d} (celeba10k has it)"
        if identity[rel] in taken:
            return "identity already in the celeba source"
        folder = f"celeba{identity[rel]}"
        return folder, rel, ("", "", folder)
    return read


def unsquash_celeba(data: bytes) -> bytes:
    """A CelebA crop resized to a square (64x64) back to CelebA's aspect, keeping its width (64x78): faces keep
    their shape, and the eyes their distance in pixels. Anything not square is returned as it is."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.shape[0] != img.shape[1]:
        return data
    w = img.shape[1]
    img = cv2.resize(img, (w, round(w * CELEBA_ASPECT)), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


TRANSFORMS = {"celeba30k": unsquash_celeba}


def _reader_for(source: str, mirrors: Path):
    if source == "celeba10k":
        return celeba10k_reader(*celeba_taken(mirrors))
    if source == "celeba30k":
        return celeba10k_reader(*celeba_taken(mirrors), skip_upto=CELEBA10K_LAST)
    return READERS.get(source)


def _write_people(root: Path, people: dict[str, tuple[str, str, str]]) -> None:
    """``root/people.csv``: folder, name, gender, group of each person written."""
    with open(root / "people.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["folder", "name", "gender", "group"])
        for folder in sorted(people):
            w.writerow([folder, *people[folder]])


def _counts(per_person: Counter) -> dict:
    return {"images": sum(per_person.values()), "people": len(per_person),
            "people_2plus": sum(1 for n in per_person.values() if n >= 2)}


def merge_sources(out: Path, name: str, parts: list[str]) -> dict:
    """Link the written sources ``parts`` (``OUT/<part>/<person>/<file>``) into ``OUT/<name>``, one folder a
    person; people.csv is their union (the first part's row wins). Two parts with the same file of a person
    stop the merge: they would be one picture twice."""
    import os
    import shutil

    rows, per_person, seen = {}, Counter(), {}
    for part in parts:
        if not (out / part / "SOURCE.json").exists():
            sys.exit(f"--merge: {out / part} is not a written source (no SOURCE.json): materialise it first")
        with open(out / part / "people.csv", newline="") as f:
            for r in csv.DictReader(f):
                rows.setdefault(r["folder"], (r["name"], r["gender"], r["group"] or r["folder"]))
        for img in sorted((out / part).glob("*/*")):
            key = (img.parent.name, img.name)
            if key in seen:
                sys.exit(f"--merge: {img} and {seen[key]} are the same file of one person; merge sources "
                         "that do not share files")
            seen[key] = img
    root = out / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for (folder, base), src in seen.items():
        (root / folder).mkdir(exist_ok=True)
        os.link(src, root / folder / base)
        per_person[folder] += 1
    _write_people(root, {folder: rows.get(folder, ("", "", folder)) for folder in per_person})
    info = {"merged": parts, **_counts(per_person),
            "sources": [json.loads((out / p / "SOURCE.json").read_text()) for p in parts]}
    (root / "SOURCE.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps({k: info[k] for k in ("merged", "images", "people", "people_2plus")}))
    return info


READERS = {"casia5": read_casia5, "asianfaces": read_asianfaces, "pakistani1": read_name_folders,
           "pakistani2": read_name_folders, "hinatazaka": read_hinatazaka, "nogizaka": read_nogizaka,
           "bollywood": read_name_folders, "bollywood100": read_name_folders, "fgnet": read_fgnet,
           "pakistani_celebs": read_name_folders, "turkish": read_turkish,
           "indian_students": first_name_folders(
               "indstud", r"(?P<where>train|validation)/(?P<name>[^/]+)/(?P<file>[^/]+)"),
           "indonesian1": first_name_folders(
               "idn1", r"dataset_tubes/(?P<where>[^/]+)/(?P<name>[^/]+)/(?P<file>[^/]+)",
               r"dataset/(?P<name>[^/]+)/(?P<where>[^/]+)/(?P<file>[^/]+)"),
           "indonesian2": first_name_folders("idn2", r"(?P<name>[^/]+)/(?P<where>[^/]+)/(?P<file>[^/]+)"),
           "nogizaka2": read_nogizaka2}


def _drop_repeats(files: list, skipped: Counter) -> list:
    """One blob twice under a person: keep the first; under two people (which is it?): drop it from all."""
    owners = defaultdict(set)
    for folder, _, sha in files:
        owners[sha].add(folder)
    out, seen = [], set()
    for folder, base, sha in files:
        if len(owners[sha]) > 1:
            skipped["same file under two people"] += 1
        elif sha in seen:
            skipped["same file twice for one person"] += 1
        else:
            seen.add(sha)
            out.append((folder, base, sha))
    return out


def _looks_like_image(data: bytes) -> bool:
    """JPEG, PNG, BMP, WebP or GIF by their first bytes (scraped sets hold web pages saved as .jpg)."""
    return (data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n" or data[:2] == b"BM"
            or (data[:4] == b"RIFF" and data[8:12] == b"WEBP") or data[:6] in (b"GIF87a", b"GIF89a"))


def plan(source: str, repo: Repo, prefix: str, skip_families: set[str], reader=None) -> tuple[list, dict, Counter]:
    """Which blobs go where: ([(person folder, file name, sha)], {folder: (name, gender, group)}, reasons).

    ``reader`` (path -> person or the reason to skip) replaces ``READERS[source]``."""
    files, people, skipped = [], {}, Counter()
    reader = reader or READERS.get(source)
    names = fiw_people(repo, prefix) if source == "fiw" else {}
    celeb_id = celeba_identities(repo) if source == "celeba" else {}
    for rel, sha, size in repo.list(prefix):
        if not _is_image(rel):
            continue
        if size < 0:
            skipped["absent from the snapshot"] += 1
            continue
        if size < 200:
            skipped["Git LFS pointer or empty file"] += 1
            continue
        if source in ("fiw", "fiw_kaggle"):
            m = FIW_RE.match(rel)
            if not m:
                skipped["not F####/MID#/file (unrelated faces or other folders)"] += 1
                continue
            fam, mid, base = m.groups()
            if fam in skip_families:
                skipped["family already taken from the named FIW copy"] += 1
                continue
            folder = f"{fam}_{mid}"
            name, gender = names.get((fam, mid), ("", ""))
            people[folder] = (name, gender if gender in ("m", "f") else "", fam)
        elif source == "pins":
            top, _, base = rel.partition("/")
            if not top.startswith("pins_") or "/" in base:
                skipped["not pins_<Name>/file"] += 1
                continue
            name = " ".join(w if w[:1].isupper() else w.capitalize() for w in top[5:].split())
            folder = name.replace(" ", "_")
            people[folder] = (name, "", folder)
        elif source == "lag":
            parts = rel.split("/")
            if len(parts) == 3 and parts[1] == "y":
                base = "young_" + parts[2]
            elif len(parts) == 2:
                base = parts[1]
            else:
                skipped["not <name>/file or <name>/y/file"] += 1
                continue
            name = " ".join(w.capitalize() for w in parts[0].split("_") if w)
            folder = name.replace(" ", "_")
            people[folder] = (name, "", folder)
        elif source == "celeba":
            base = rel
            if "/" in rel or rel not in celeb_id:
                skipped["not in identity_CelebA.txt"] += 1
                continue
            folder = f"celeba{celeb_id[rel]}"
            people[folder] = ("", "", folder)
        elif reader is not None:
            got = reader(rel)
            if isinstance(got, str):
                skipped[got] += 1
                continue
            folder, base, people[folder] = got
        else:
            raise ValueError(source)
        files.append((folder, base, sha))
    if reader is not None:
        files = _drop_repeats(files, skipped)
        people = {folder: people[folder] for folder in {f for f, _, _ in files}}
    return files, people, skipped


def materialise(source: str, mirrors: Path, out: Path, skip_families: set[str], count_only: bool = False) -> set[str]:
    repo_name, commit, prefix = SOURCES[source]
    repo = Repo(mirrors, repo_name, commit)
    reader = _reader_for(source, mirrors)
    files, people, skipped = plan(source, repo, prefix, skip_families, reader)
    if count_only:  # what the listing gives, before any blob is read
        per = Counter(folder for folder, _, _ in files)
        print(json.dumps({"source": source, "repo": repo_name, "commit": commit, "path": prefix, "images": len(files),
                          "people": len(per), "people_2plus": sum(1 for n in per.values() if n >= 2),
                          "women": sum(1 for f in per if people[f][1] == "f"), "skipped": dict(skipped)}))
        return {p[2] for p in people.values()}
    root = out / source
    root.mkdir(parents=True, exist_ok=True)
    per_person = Counter()
    for start in range(0, len(files), 2000):
        chunk = files[start:start + 2000]
        blobs = repo.read([sha for _, _, sha in chunk])
        for folder, base, sha in chunk:
            data = blobs[sha]
            if data is None:
                skipped["blob missing"] += 1
                continue
            if reader is not None and not _looks_like_image(data):
                skipped["not an image (e.g. a web page saved as .jpg)"] += 1
                continue
            if source in TRANSFORMS:
                data = TRANSFORMS[source](data)
            (root / folder).mkdir(exist_ok=True)
            (root / folder / base).write_bytes(data)
            per_person[folder] += 1
    _write_people(root, {folder: people[folder] for folder in people if per_person[folder]})
    info = {"source": source, "repo": repo_name, "commit": commit, "path": prefix, **_counts(per_person),
            "skipped": dict(skipped)}
    if source == "nogizaka2":
        info["dropped_people"] = [{"folder": f"{k}_out", "reason": why} for k, why in NOGIZAKA2_DROPPED.items()]
    if source == "asianfaces":
        info["dropped_people"] = [{"name": _words(stem), "file_stem": stem, "reason": why}
                                  for stem, why in ASIANFACES_DROPPED.items()]
    (root / "SOURCE.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))
    return {p[2] for p in people.values()}


def cfp_names(mirrors: Path, out: Path) -> None:
    """Write CFP's 500 names to OUT/exclude_cfp.txt (for ``iznet data build --exclude``)."""
    repo_name, commit, path = CFP
    repo = Repo(mirrors, repo_name, commit)
    sha = [s for rel, s, _ in repo.list(path)][0]
    names = [n.strip() for n in repo.read([sha])[sha].decode("utf-8", "replace").splitlines() if n.strip()]
    out.mkdir(parents=True, exist_ok=True)
    (out / "exclude_cfp.txt").write_text(f"# CFP people ({repo_name} @ {commit}, {path})\n" + "\n".join(names) + "\n")
    print(json.dumps({"source": "cfp names", "repo": repo_name, "commit": commit, "path": path, "names": len(names)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("collection/raw"))
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--only", default=",".join(SOURCES), help="comma-separated sources")
    ap.add_argument("--cfp-names", action="store_true", help="also write OUT/exclude_cfp.txt from CFP's name list")
    ap.add_argument("--skip-written", action="store_true",
                    help="leave out what OUT already holds (a source's SOURCE.json, written last; exclude_cfp.txt)")
    ap.add_argument("--count-only", action="store_true",
                    help="print each source's people and images from its snapshot listing; write nothing")
    ap.add_argument("--merge", default=None, metavar="NAME=A,B",
                    help="link the written sources A, B into OUT/NAME (nothing is read from the snapshots)")
    args = ap.parse_args()
    if args.merge:
        name, _, parts = args.merge.partition("=")
        parts = [x.strip() for x in parts.split(",") if x.strip()]
        if not name or len(parts) < 2:
            sys.exit(f"--merge {args.merge}: give NAME=A,B (two or more written sources)")
        merge_sources(args.out, name, parts)
        return
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SOURCES)
    if unknown:
        sys.exit(f"unknown sources {sorted(unknown)}: choose from {', '.join(SOURCES)}")
    only = [x for x in SOURCES if x in only]  # fiw before fiw_kaggle, whatever the order given
    if args.skip_written:
        todo = {x for x in only if not (args.out / x / "SOURCE.json").exists()}
        if "fiw_kaggle" in todo:
            todo.add("fiw")  # its families are what fiw_kaggle leaves out
        only = [x for x in only if x in todo]
        args.cfp_names = args.cfp_names and not (args.out / "exclude_cfp.txt").exists()
    families: set[str] = set()
    if "fiw_kaggle" in only and "fiw" not in only:
        sys.exit("fiw_kaggle takes only the families missing from fiw: materialise both together")
    needed = [SOURCES[x][0] for x in only] + ([CFP[0]] if args.cfp_names else [])
    if "celeba10k" in only or "celeba30k" in only:
        needed.append(SOURCES["celeba"][0])  # its identity_CelebA.txt, and the identities it already has
    missing = sorted({r for r in needed if snapshot_dir(args.mirrors, r) is None})
    if missing:  # all of them named at once, before any source is written
        sys.exit(f"no git snapshot under {args.mirrors} of: {', '.join(missing)}; bring them with the search "
                 "tool's fetch first")
    if args.cfp_names and not args.count_only:
        cfp_names(args.mirrors, args.out)
    for source in only:
        got = materialise(source, args.mirrors, args.out, families if source == "fiw_kaggle" else set(),
                          args.count_only)
        if source == "fiw":
            families |= got


if __name__ == "__main__":
    main()
