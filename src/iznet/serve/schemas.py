"""Pydantic models of the HTTP API: what each endpoint answers (they make the OpenAPI schema at
``/openapi.json``). The fields of a labelled photo are those of the ``iznet-label-v1`` JSON
(``docs/system.md``), plus the picture sent back."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Every error: a message saying what is wrong and what to do."""

    error: str = Field(..., examples=["no person named 'Bob' in the gallery"])


class FaceOut(BaseModel):
    """One face found in the photo."""

    box: list[float] = Field(..., description="[x1, y1, x2, y2] in pixels of the original photo (EXIF-upright)",
                             min_length=4, max_length=4)
    det_score: Optional[float] = Field(None, description="the detector's confidence")
    name: str = Field(..., description="the person, or 'unknown'")
    distance: Optional[float] = Field(None, description="Euclidean distance (0..2) to the nearest person's "
                                                         "prototype; null with an empty gallery")
    nearest: Optional[str] = Field(None, description="the nearest person even when name is 'unknown'")
    second_name: Optional[str] = Field(None, description="the runner-up person")
    second_distance: Optional[float] = None
    margin: Optional[float] = Field(None, description="second_distance - distance")
    landmarks: Optional[list[list[float]]] = Field(
        None, description="five [x, y] points in pixels of the photo: the eye on the image's left, the other eye, "
                          "the nose tip, the left and the right mouth corner; null when the detector gives none")


class LabelOut(BaseModel):
    """Who is in a photo (``iznet-label-v1``) and, unless ``image=none``, a picture of it."""

    schema_: str = Field(..., alias="schema", serialization_alias="schema", examples=["iznet-label-v1"])
    source: Optional[str] = Field(None, description="the uploaded file's name (as the client gave it)")
    image_size: list[int] = Field(..., description="[width, height] of the photo; boxes are in these pixels")
    embedder: Optional[str] = None
    prototype_method: str
    threshold: Optional[float] = Field(None, description="unknown-face distance used; null: every face named")
    min_margin: Optional[float] = Field(None, description="runner-up margin a name also needs (0: none)")
    faces: list[FaceOut] = Field(..., description="highest detector score first; [] when no face was found")
    warnings: list[str] = Field(default_factory=list)
    image: Optional[str] = Field(None, description="the picture as a base64 JPEG (labelled: boxes and names "
                                                   "drawn; plain: the upright photo); null with image=none")
    image_type: Optional[str] = Field(None, examples=["image/jpeg"])
    preview_size: Optional[list[int]] = Field(None, description="[width, height] of that picture (the photo "
                                                                "scaled down to the server's preview size)")

    model_config = {"populate_by_name": True}


class PersonOut(BaseModel):
    """One person in the gallery."""

    name: str
    n_images: int = Field(..., description="enrolled pictures")
    created: str = Field(..., description="when the person was added (UTC, ISO 8601)")


class PeopleOut(BaseModel):
    """Everyone in the gallery, sorted by name."""

    count: int
    people: list[PersonOut]


class FileProblem(BaseModel):
    """An uploaded file that was not enrolled, and why."""

    file: str
    reason: str


class SeveralFaces(BaseModel):
    """An uploaded photo with several faces (the most confident one was enrolled)."""

    file: str
    faces: int


class EnrollOut(BaseModel):
    """What an enrolment did; files are named as the client named them."""

    name: str
    created: bool = Field(..., description="the person is new")
    added: list[str]
    duplicates: list[str] = Field(..., description="pictures the person already had (same content)")
    skipped: list[FileProblem] = Field(..., description="photos in which no face was found")
    several_faces: list[SeveralFaces]
    headshots: list[str] = Field(default_factory=list, description="photos whose face only the headshot fallback "
                                 "found (a weak face filling the picture; check them)")
    person: PersonOut


class RenameIn(BaseModel):
    """The new name of a person."""

    new_name: str = Field(..., examples=["Alice Smith"])


class RemovedOut(BaseModel):
    """A person removed, with how many pictures went with them."""

    name: str
    images_removed: int


class LimitsOut(BaseModel):
    max_upload_bytes: int = Field(..., description="largest request body (all files together)")
    max_pixels: int = Field(..., description="largest photo, width x height")
    max_files: int = Field(..., description="most photos in one enrolment")


class HealthOut(BaseModel):
    """Models loaded and the gallery at a glance."""

    status: str = Field(..., examples=["ok"])
    models_loaded: bool
    detector: str
    embedder: str = Field(..., description="the embedder tag the gallery's vectors are stored under")
    embedder_trained: bool
    input_size: int
    prototype_method: str
    threshold: Optional[float]
    gallery: str
    people: int
    images: int
    warnings: list[str]
    limits: LimitsOut


__all__ = [
    "EnrollOut", "ErrorOut", "FaceOut", "FileProblem", "HealthOut", "LabelOut", "LimitsOut", "PeopleOut",
    "PersonOut", "RemovedOut", "RenameIn", "SeveralFaces",
]
