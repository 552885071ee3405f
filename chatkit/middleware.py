"""Project middleware."""

from collections.abc import AsyncIterator
from typing import BinaryIO

from asgiref.sync import markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


async def _read_chunks(file: BinaryIO | None, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    if file is None:  # HEAD and 304 answers have no body
        return
    read = sync_to_async(file.read, thread_sensitive=False)
    while chunk := await read(size):
        yield chunk


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise as an async middleware.

    WhiteNoise's own middleware is sync-only, which makes Django pass every request, a long
    chat turn included, through a worker thread. Here the lookup is a dictionary hit (a
    file-system search only with autorefresh, in development) and files are read off the
    event loop.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response, *args, **kwargs):
        super().__init__(get_response, *args, **kwargs)
        markcoroutinefunction(self)  # so the middleware around us calls us as async

    async def __call__(self, request):
        if self.autorefresh:
            find = sync_to_async(self.find_file, thread_sensitive=False)
            static_file = await find(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        response = self.serve(static_file, request)
        response.streaming_content = _read_chunks(response.file_to_stream)
        return response
