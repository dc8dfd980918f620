"""scripts/collection_sources.py: how the newer sources' paths become people, and what is left out."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "collection_sources.py"


@pytest.fixture(scope="module")
def cs():
    spec = importlib.util.spec_from_file_location("collection_sources_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_asianfaces_names_aliases_and_what_is_left_out(cs):
    assert cs.read_asianfaces("chinese/ai-weiwei-2.jpg") == ("Ai_Weiwei", "ai-weiwei-2.jpg",
                                                            ("Ai Weiwei", "", "Ai_Weiwei"))
    # trailing numbers (a site id, then the picture number) go; two spellings of one person meet
    assert cs.read_asianfaces("japanese/kazuchika-okada-52883-1.jpg")[0] == "Kazuchika_Okada"
    assert cs.read_asianfaces("chinese/hu-yi-tian.jpg")[0] == cs.read_asianfaces("chinese/hu-yitian-3.jpg")[0]
    assert cs.read_asianfaces("japanese/shinz-abe.jpg")[0] == "Shinzo_Abe"  # so the LFW / CFP exclusion sees him
    # K-pop idols never enter training
    assert "K-pop" in cs.read_asianfaces("korean/anyone-1.jpg")
    assert "K-pop" in cs.read_asianfaces("chinese/lu-han-2.jpg")
    assert isinstance(cs.read_asianfaces("thai/someone.jpg"), str)


def test_name_folders_nogizaka_hinatazaka_and_casia(cs):
    assert cs.read_name_folders("imran_khan/a.jpg") == ("Imran_Khan", "a.jpg", ("Imran Khan", "m", "Imran_Khan"))
    assert cs.read_name_folders("maryam_nawaz/b.jpg")[2][1] == "f"
    assert cs.read_name_folders("fazlur_rehman/c.jpg")[0] == "Fazal_ur_Rehman"  # LFW's spelling
    assert "augmented" in cs.read_name_folders("imran_khan/aug_1.jpg")
    # Nogizaka: the file-name prefix names the person, whatever folder the file sits in
    assert cs.read_nogizaka("test/nanase/nanami.12.jpg")[0] == "Nanami_Hashimoto"
    assert cs.read_nogizaka("train/mai/mai.3.jpg")[2] == ("Mai Shiraishi", "f", "Mai_Shiraishi")
    assert isinstance(cs.read_nogizaka("train/mai/readme.txt"), str)
    assert cs.read_hinatazaka("miku/0001.jpg")[0] == "Miku_Kanemura"
    assert cs.read_casia5("007/007_2.bmp") == ("casia5_007", "007_2.bmp", ("", "", "casia5_007"))
    assert isinstance(cs.read_casia5("README.md"), str)


def test_repeated_files_one_person_keeps_one_two_people_lose_both(cs):
    files = [("a", "1.jpg", "s1"), ("a", "2.jpg", "s1"), ("a", "3.jpg", "s2"), ("b", "1.jpg", "s2"),
             ("b", "2.jpg", "s3")]
    skipped = Counter()
    assert cs._drop_repeats(files, skipped) == [("a", "1.jpg", "s1"), ("b", "2.jpg", "s3")]
    assert skipped == {"same file twice for one person": 1, "same file under two people": 2}


def test_images_are_told_from_web_pages_by_their_first_bytes(cs):
    assert cs._looks_like_image(b"\xff\xd8\xff\xe0" + b"0" * 20)
    assert cs._looks_like_image(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    assert cs._looks_like_image(b"BM" + b"0" * 20)
    assert cs._looks_like_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert not cs._looks_like_image(b"<!DOCTYPE html><html>")


def test_snapshot_dir_bare_work_tree_or_missing(cs, tmp_path):
    bare = tmp_path / "a+b" / "repo"
    bare.mkdir(parents=True)
    (bare / "HEAD").write_text("ref: refs/heads/main\n")
    tree = tmp_path / "c+d" / "repo" / ".git"
    tree.mkdir(parents=True)
    (tree / "HEAD").write_text("ref: refs/heads/main\n")
    assert cs.snapshot_dir(tmp_path, "a/b") == bare
    assert cs.snapshot_dir(tmp_path, "c/d") == tree
    assert cs.snapshot_dir(tmp_path, "e/f") is None
    with pytest.raises(SystemExit, match="no git snapshot of e/f"):
        cs.Repo(tmp_path, "e/f", "0" * 40)


def test_sources_found_for_a_next_collection(cs):
    # Bollywood actors: the spellings CFP uses, so its exclusion list sees them; women by name
    assert cs.read_name_folders("Ajay_Devgn/Ajay.3.jpg")[2] == ("Ajay Devgan", "m", "Ajay_Devgan")
    assert cs.read_name_folders("Shah_Rukh_Khan/Shah.1.jpg")[0] == "Shahrukh_Khan"
    assert cs.read_name_folders("Vidya_Balan/Vidya.7.jpg")[2] == ("Vidya Balan", "f", "Vidya_Balan")
    assert cs.read_name_folders("Tabu/Tabu.2.jpg")[2][1] == "f"
    assert cs.read_name_folders("Humayo Saeed/x.jpg")[2] == ("Humayun Saeed", "m", "Humayun_Saeed")
    assert cs.read_name_folders("Saba Qamar/y.png")[0] == "Saba_Qamar"
    # FG-NET: the first three digits are the person, whatever the age and suffix
    assert cs.read_fgnet("001A02.JPG") == ("fgnet_001", "001A02.JPG", ("", "", "fgnet_001"))
    assert cs.read_fgnet("082A18b.JPG")[0] == cs.read_fgnet("082A05.jpg")[0] == "fgnet_082"
    assert isinstance(cs.read_fgnet("annotations.csv"), str)
    # CelebA crops: the identity file names the person; identities another source has are left out
    read = cs.celeba10k_reader({"000001.jpg": "2880", "000002.jpg": "2937"}, taken={"2937"})
    assert read("000001.jpg") == ("celeba2880", "000001.jpg", ("", "", "celeba2880"))
    assert read("000002.jpg") == "identity already in the celeba source"
    assert read("999999.jpg") == "not in identity_CelebA.txt"


def test_plan_with_a_reader_counts_what_it_skips(cs):
    class FakeRepo:
        def list(self, prefix):
            return [("001A02.JPG", "s1", 5000), ("001A05.JPG", "s2", 5000), ("002A10.JPG", "s3", 100),
                    ("notes.txt", "s4", 50), ("003A01.JPG", "s5", -1)]
    files, people, skipped = cs.plan("fgnet", FakeRepo(), "images/", set())
    assert files == [("fgnet_001", "001A02.JPG", "s1"), ("fgnet_001", "001A05.JPG", "s2")]
    assert people == {"fgnet_001": ("", "", "fgnet_001")}
    assert skipped == {"Git LFS pointer or empty file": 1, "absent from the snapshot": 1}


def test_celeba30k_leaves_out_celeba10k_range_and_taken_people(cs):
    read = cs.celeba10k_reader({"000005.jpg": "2880", "010000.jpg": "7", "010001.jpg": "2880",
                                "150000.jpg": "2937"}, taken={"2937"}, skip_upto=cs.CELEBA10K_LAST)
    assert read("000005.jpg") == read("010000.jpg") == "file number up to 010000 (celeba10k has it)"
    # the same person as celeba10k's file 000005: the same folder, so a merge gives one person
    assert read("010001.jpg") == ("celeba2880", "010001.jpg", ("", "", "celeba2880"))
    assert read("150000.jpg") == "identity already in the celeba source"


def test_unsquash_restores_celeba_aspect_and_keeps_the_width(cs):
    import cv2
    import numpy as np

    img = np.zeros((64, 64, 3), np.uint8)
    img[20:24, 10:20] = 255  # a bright band: its row must move down by the aspect, its columns stay
    out = cv2.imdecode(np.frombuffer(cs.unsquash_celeba(cv2.imencode(".jpg", img)[1].tobytes()), np.uint8), 1)
    assert out.shape == (78, 64, 3)
    rows = np.flatnonzero(out[:, 15, 0] > 128)
    cols = np.flatnonzero(out[round(22 * 78 / 64), :, 0] > 128)
    assert abs(rows.mean() - 22 * 78 / 64) < 1.5 and abs(cols.mean() - 14.5) < 1.5
    wide = cv2.imencode(".png", np.zeros((40, 60, 3), np.uint8))[1].tobytes()
    assert cs.unsquash_celeba(wide) == wide  # not square: left as it is
    assert cs.unsquash_celeba(b"not an image") == b"not an image"


def _written(root: Path, files: dict[str, bytes], people: list[tuple[str, str]]):
    import csv
    import json

    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    with open(root / "people.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["folder", "name", "gender", "group"])
        for folder, gender in people:
            w.writerow([folder, "", gender, folder])
    (root / "SOURCE.json").write_text(json.dumps({"source": root.name}))


def test_merge_links_two_samples_of_the_same_people_into_one_folder_each(cs, tmp_path):
    import csv
    import json

    _written(tmp_path / "a", {"celeba1/000001.jpg": b"x1", "celeba2/000002.jpg": b"x2"},
             [("celeba1", ""), ("celeba2", "")])
    _written(tmp_path / "b", {"celeba1/020000.jpg": b"y1", "celeba3/030000.jpg": b"y3"},
             [("celeba1", ""), ("celeba3", "")])
    info = cs.merge_sources(tmp_path, "m", ["a", "b"])
    assert (info["images"], info["people"], info["people_2plus"]) == (4, 3, 1)
    assert sorted(p.name for p in (tmp_path / "m" / "celeba1").iterdir()) == ["000001.jpg", "020000.jpg"]
    assert (tmp_path / "m" / "celeba1" / "020000.jpg").read_bytes() == b"y1"
    with open(tmp_path / "m" / "people.csv", newline="") as f:
        assert [r["folder"] for r in csv.DictReader(f)] == ["celeba1", "celeba2", "celeba3"]
    assert [s["source"] for s in json.loads((tmp_path / "m" / "SOURCE.json").read_text())["sources"]] == ["a", "b"]
    # merging again replaces the folder; a part not written, or a file in both parts, stops with a message
    assert cs.merge_sources(tmp_path, "m", ["a", "b"])["images"] == 4
    with pytest.raises(SystemExit, match="not a written source"):
        cs.merge_sources(tmp_path, "m2", ["a", "none"])
    _written(tmp_path / "c", {"celeba1/000001.jpg": b"z"}, [("celeba1", "")])
    with pytest.raises(SystemExit, match="same file of one person"):
        cs.merge_sources(tmp_path, "m3", ["a", "c"])


def test_sources_of_stop_55_turkish_students_and_nogizaka2(cs):
    # Turkish names in ASCII letters, as LFW spells them (so --exclude-lfw sees Erdogan); one person in both parts
    assert cs.ascii_name("Recep Tayyip Erdoğan") == "Recep Tayyip Erdogan"
    assert cs.ascii_name("Kemal  Kılıçdaroğlu") == "Kemal Kilicdaroglu"
    assert cs.ascii_name("Ekrem İmamoğlu") == "Ekrem Imamoglu"
    t = cs.read_turkish("train/Recep Tayyip Erdoğan/Recep Tayyip Erdoğan_3.jpg")
    assert t[0] == "Recep_Tayyip_Erdogan" and t[1] == "train_Recep Tayyip Erdoğan_3.jpg"
    assert cs.read_turkish("validation/Hande Erçel/x.jpg")[0] == cs.read_turkish("train/Hande Erçel/y.jpg")[0]
    assert isinstance(cs.read_turkish("test/Someone/x.jpg"), str)
    # first names: one student in two ethnic-group folders (and two layouts) is one person
    read = cs.READERS["indonesian1"]
    a, b = read("dataset/san/Jawa/img_1.jpg"), read("dataset/san/Minang/img_1.jpg")
    assert a[0] == b[0] == "idn1_san" and a[1] != b[1]
    assert read("dataset_tubes/Sunda/Hasya/1.jpg") == ("idn1_hasya", "Sunda_1.jpg", ("", "", "idn1_hasya"))
    assert isinstance(read("dataset_tubes_gender/Sunda/Hasya/1.jpg"), str)  # a re-sorted copy: left out
    assert cs.READERS["indian_students"]("validation/MEGHANA/4.jpg")[0] == "indstud_meghana"
    assert cs.READERS["indonesian2"]("Tia/Jawa/Tia_Jawa_a.jpg")[0] == "idn2_tia"
    # Nogizaka46 by name (members the nogizaka source has merge with it); the AKB48-family member stays out
    assert cs.read_nogizaka2("maiyan_out/12.jpg") == cs._named("Mai Shiraishi", "12.jpg", "f")
    assert cs.read_nogizaka2("yasushi_out/1.jpg")[2] == ("Yasushi Akimoto", "m", "Yasushi_Akimoto")
    assert "AKB48" in cs.read_nogizaka2("ikoma_out/3.jpg")
    assert isinstance(cs.read_nogizaka2("photo/1.jpg"), str)
