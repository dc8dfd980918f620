"""The HTTP API and the web page, a thin FastAPI adapter over :class:`~iznet.serve.service.RecognitionService`.

Endpoints (all answers JSON; every error is ``{"error": message}``; details in ``docs/web.md``):

=========================================  =====================================================
``GET  /``                                 the page: drop a photo, see who is in it; manage people
``POST /api/label``                        multipart ``file`` -> faces, names, distances, picture
``GET  /api/people``                       everyone enrolled
``POST /api/people``                       multipart ``name`` + ``files`` -> enrol a new person
``POST /api/people/{name}/images``         multipart ``files`` -> more photos of someone enrolled
``POST /api/people/{name}/rename``         JSON ``{"new_name": ...}``
``DELETE /api/people/{name}``              remove a person
``GET  /api/health``                       models loaded, gallery size, limits
=========================================  =====================================================

Request bodies over ``max_upload_bytes`` are refused with 413 by :class:`BodyLimitMiddleware` before they
are read: at once when ``Content-Length`` says so, else as soon as the streamed bytes pass the limit.

>>> app = create_app(ServeSettings(gallery="g.db", embedder="raw", detector="haar"))   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                                      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iznet.errors import GalleryError, ImageError, IznetError, NoFaceError
from iznet.serve.schemas import (
    EnrollOut, ErrorOut, HealthOut, LabelOut, PeopleOut, PersonOut, RemovedOut, RenameIn,
)
from iznet.serve.service import RecognitionService, ServeError, ServeSettings, Upload
from iznet.version import __version__

_logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page uses nothing but its own files (the machine it runs on may have no internet).
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "bad input (missing field, bad name, too many files)",
        404: "no such person",
        409: "the name is taken, or the gallery holds another embedder's vectors",
        413: "request body or image too large",
        415: "not an image (content sniffed, not the file name)",
        422: "an image that cannot be used (corrupt data; no face in any photo)",
        503: "the gallery is busy (another process is writing); try again",
    }
    return {c: {"model": ErrorOut, "description": text[c]} for c in codes}


# ---------------------------------------------------------------------------------------------- body limit
class _BodyTooLarge(Exception):
    pass


_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class OriginGuardMiddleware:
    """Refuse requests that change the gallery (POST, PUT, PATCH, DELETE) from other web sites, and, with a
    token, from anyone who does not present it; both answered 403 ``{"error": ...}``.

    A browser sends ``Origin`` with every cross-site POST: a page on another site open in the user's browser
    could otherwise enrol or remove people on ``http://127.0.0.1:8000``. A request whose ``Origin`` (or, without
    it, ``Referer``) names another host and port than its ``Host`` header is refused; requests without either
    header (curl, scripts) pass. Reading (GET, and POST /api/label, which changes nothing) is not restricted
    by the origin rule.
    """

    def __init__(self, app: ASGIApp, token: str | None = None):
        self.app = app
        self.token = token or None

    @staticmethod
    def _refuse(message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=403)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET").upper() not in _UNSAFE_METHODS \
                or scope.get("path", "") == "/api/label":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host", "").strip().lower()
        origin = headers.get("origin") or headers.get("referer")
        if origin is not None and origin.strip().lower() != "null":
            from urllib.parse import urlsplit

            netloc = urlsplit(origin.strip()).netloc.lower()
            if not host or netloc != host:
                await self._refuse(f"cross-site request refused: origin {origin!r} is not this service ({host})")(
                    scope, receive, send)
                return
        elif origin is not None:  # "null": sandboxed frames, file:// pages
            await self._refuse("cross-site request refused: origin 'null'")(scope, receive, send)
            return
        if self.token is not None:
            import hmac

            given = headers.get("x-iznet-token") or ""
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = given or auth[7:].strip()
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                await self._refuse("this service needs its token to change the gallery: send it as "
                                   "'Authorization: Bearer TOKEN' or 'X-Iznet-Token: TOKEN'")(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse HTTP request bodies larger than ``max_bytes`` with 413 ``{"error": ...}``.

    A declared ``Content-Length`` over the limit is answered without reading the body. Otherwise the bytes
    are counted as the application reads them; past the limit reading stops, whatever the application
    answered instead (FastAPI turns a failed form parse into a 400) is dropped, and 413 is sent.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)

    def _response(self) -> JSONResponse:
        n = self.max_bytes
        size = f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n / 2**10:.3g} KiB"
        return JSONResponse({"error": f"request body is larger than the limit of {size} ({n:,} bytes);"
                                      " send a smaller photo or fewer photos"}, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False  # the server rejects a malformed header itself
            if too_big:
                await self._response()(scope, receive, send)
                return
        seen = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the application's answer to a body cut short is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if exceeded and not started:
            await self._response()(scope, receive, send)


# ---------------------------------------------------------------------------------------------- routes
router = APIRouter(prefix="/api")


def get_service(request: Request) -> RecognitionService:
    return request.app.state.service


def _read(upload: UploadFile, limit: int) -> Upload:
    # the body limit already bounds this; the cap keeps a misconfigured server from reading without end
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ServeError(f"{upload.filename or 'upload'} is larger than {limit:,} bytes", status=413)
    return Upload(filename=upload.filename or "upload", data=data)


def _person_out(p: Any) -> PersonOut:
    return PersonOut(name=p.name, n_images=p.n_images, created=p.created)


@router.post("/label", response_model=LabelOut, response_model_by_alias=True,
             responses=_errors(400, 413, 415, 422), summary="Who is in this photo?")
def label(
    file: UploadFile = File(..., description="the photo (JPEG, PNG, WebP, BMP, GIF, TIFF, PPM)"),
    image: Literal["labelled", "plain", "none"] = Query(
        "labelled", description="picture sent back: boxes and names drawn, the upright photo alone, or none"),
    svc: RecognitionService = Depends(get_service),
) -> Any:
    """Detect every face in the photo and name it from the gallery ("unknown" above the threshold).

    Boxes are in pixels of the original photo. The picture comes back inline as a base64 JPEG (no second
    request, nothing kept on the server), scaled down to the server's preview size.
    """
    out = svc.label(_read(file, svc.settings.max_upload_bytes), image=image)
    doc = out.result.to_json()
    doc["image"] = out.image_base64()
    doc["image_type"] = None if out.image_jpeg is None else "image/jpeg"
    doc["preview_size"] = None if out.preview_size is None else list(out.preview_size)
    return LabelOut.model_validate(doc)


@router.get("/people", response_model=PeopleOut, summary="Everyone enrolled")
def list_people(svc: RecognitionService = Depends(get_service)) -> PeopleOut:
    people = [_person_out(p) for p in svc.people()]
    return PeopleOut(count=len(people), people=people)


def _enroll_out(svc: RecognitionService, outcome: Any) -> EnrollOut:
    info = svc.person(outcome.name)
    return EnrollOut(
        name=outcome.name,
        created=outcome.created,
        added=outcome.added,
        duplicates=outcome.duplicates,
        skipped=[{"file": f, "reason": r} for f, r in outcome.skipped],
        several_faces=[{"file": f, "faces": n} for f, n in outcome.several_faces],
        headshots=outcome.headshots,
        person=_person_out(info),
    )


@router.post("/people", response_model=EnrollOut, status_code=201,
             responses=_errors(400, 409, 413, 415, 422, 503), summary="Enrol a new person")
def enroll_person(
    name: str = Form(..., description="the person's name (1-64 characters, no / or \\, not 'unknown')"),
    files: list[UploadFile] = File(..., description="one or more photos of that one person"),
    svc: RecognitionService = Depends(get_service),
) -> EnrollOut:
    """Enrol a new person from photos of them (the most confident face of each photo).

    All photos are checked before anything is written; then one gallery transaction. Photos in which no
    face is found are listed in ``skipped``; if none has a face, nothing is enrolled (422).
    """
    uploads = [_read(f, svc.settings.max_upload_bytes) for f in files]
    return _enroll_out(svc, svc.enroll(name, uploads, new_person=True))


@router.post("/people/{name}/images", response_model=EnrollOut,
             responses=_errors(400, 404, 413, 415, 422, 503), summary="Add photos of someone enrolled")
def add_images(
    name: str,
    files: list[UploadFile] = File(..., description="one or more photos of that person"),
    svc: RecognitionService = Depends(get_service),
) -> EnrollOut:
    """Add photos to a person already in the gallery (same rules as enrolling)."""
    uploads = [_read(f, svc.settings.max_upload_bytes) for f in files]
    return _enroll_out(svc, svc.enroll(name, uploads, new_person=False))


@router.post("/people/{name}/rename", response_model=PersonOut, responses=_errors(400, 404, 409, 503),
             summary="Rename a person")
def rename_person(name: str, body: RenameIn, svc: RecognitionService = Depends(get_service)) -> PersonOut:
    new = svc.rename(name, body.new_name)
    return _person_out(svc.person(new))


@router.delete("/people/{name}", response_model=RemovedOut, responses=_errors(400, 404, 503),
               summary="Remove a person")
def remove_person(name: str, svc: RecognitionService = Depends(get_service)) -> RemovedOut:
    """Remove a person with their pictures, embeddings and prototypes (and the uploads kept for them)."""
    stored, n = svc.remove(name)
    return RemovedOut(name=stored, images_removed=n)


@router.get("/health", response_model=HealthOut, summary="Models and gallery at a glance")
def health(svc: RecognitionService = Depends(get_service)) -> Any:
    return svc.health()


# ---------------------------------------------------------------------------------------------- errors
def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'decode error')}); send "
                         'e.g. {"name": "Ann"} with Content-Type: application/json')
            continue
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
        where = ".".join(loc) or "request"
        msg = "is required" if err.get("type") == "missing" else err.get("msg", "is invalid")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        resp = _error(exc.status_code, str(exc.detail))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(ImageError)
    async def _image(request: Request, exc: ImageError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(NoFaceError)
    async def _noface(request: Request, exc: NoFaceError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(GalleryError)
    async def _gallery(request: Request, exc: GalleryError) -> JSONResponse:
        status = 503 if "busy" in str(exc) else 409  # a write that lost to another process
        return _error(status, str(exc))

    @app.exception_handler(IznetError)
    async def _iznet(request: Request, exc: IznetError) -> JSONResponse:
        _logger.error("%s %s: %s", request.method, request.url.path, exc)
        return _error(500, f"server problem: {exc}")  # a model or configuration fault, not the request's

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _logger.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")


def _custom_openapi(app: FastAPI):
    """The schema without FastAPI's default 422 validation-error bodies: this API answers 400 ``ErrorOut``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                resp = op.get("responses", {})
                ref = str(resp.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {}))
                if "HTTPValidationError" in ref:
                    del resp["422"]
                    resp.setdefault("400", {"description": "bad input", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorOut"}}}})
        comps = schema.get("components", {}).get("schemas", {})
        comps.pop("HTTPValidationError", None)
        comps.pop("ValidationError", None)
        comps.setdefault("ErrorOut", ErrorOut.model_json_schema())
        app.openapi_schema = schema
        return schema

    return openapi


# ---------------------------------------------------------------------------------------------- factory
def create_app(settings: ServeSettings | None = None, *, detector: Any = None, embedder: Any = None,
               service: RecognitionService | None = None) -> FastAPI:
    """Build the web application.

    Args:
        settings: gallery, model specs and limits (default :class:`ServeSettings`).
        detector, embedder: objects to use instead of loading ``settings.detector`` / ``settings.embedder``
            (tests pass a fake detector and the raw-pixel embedder).
        service: a ready :class:`RecognitionService` (then ``settings`` only sets the body limit).

    Models are loaded and the gallery opened here, so a bad spec fails before a server starts.

    Raises:
        ModelError, GalleryError: as :meth:`RecognitionService.from_settings`.
    """
    settings = settings or (service.settings if service is not None else ServeSettings())
    svc = service or RecognitionService.from_settings(settings, detector=detector, embedder=embedder)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        svc.close()

    app = FastAPI(
        redirect_slashes=False,  # "/api/people/" is an error with a JSON body, not a bare 307
        title="iznet",
        version=__version__,
        description="Drop in a photo, see who is in it; manage the people of the gallery. See docs/web.md.",
        lifespan=lifespan,
    )
    app.state.service = svc
    app.state.settings = settings
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(OriginGuardMiddleware, token=settings.token)
    _install_error_handlers(app)
    app.include_router(router)
    app.openapi = _custom_openapi(app)  # type: ignore[method-assign]

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                                     "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


__all__ = ["BodyLimitMiddleware", "OriginGuardMiddleware", "PAGE_CSP", "STATIC_DIR", "create_app", "get_service", "router"]
