"""The app's Voila server: Voila with a cap on visitors' kernels (`ui.classroom`).

`python -m percpu_explorer.ui.voila_server` takes Voila's command line plus
`--ClassroomVoila.max_kernels=N`. Its dashboard handler answers past the cap with the
"class is full" page (HTTP 503, Retry-After) before any kernel starts; below it, it renders
as Voila does. A pre-started kernel handed to a visitor is marked active at that moment, so
the idle culler gives the visitor's page time to connect to it.
"""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server._tz import utcnow  # the clock the idle culler reads
from traitlets import Int
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

from . import classroom


class ClassroomHandler(TornadoVoilaHandler):
    """Voila's dashboard handler behind the cap on visitors' kernels."""

    arriving = 0  # visitors past the gate whose kernel is not yet listed (this process)

    def initialize(self, **kwargs: Any) -> None:
        self.max_kernels = int(kwargs.pop("max_kernels", 0))
        super().initialize(**kwargs)

    def _open_kernels(self) -> int:
        km = self.kernel_manager
        return classroom.visitor_kernels(km.list_kernel_ids(),
                                         classroom.pooled_kernel_ids(km),
                                         ClassroomHandler.arriving)

    def _mark_pool_active(self) -> None:
        """The kernel this request takes from a pool counts as active from now."""
        km = self.kernel_manager
        for kernel_id in classroom.pooled_kernel_ids(km) & set(km.list_kernel_ids()):
            km.get_kernel(kernel_id).last_activity = utcnow()

    @tornado.web.authenticated
    async def get(self, path: str | None = None) -> None:
        notebook = self.notebook_path or path or ""
        if not notebook.endswith(".ipynb"):
            await super().get(path)
            return
        open_now = self._open_kernels()
        if self.max_kernels and open_now >= self.max_kernels:
            self.log.warning("class full: %d of %d kernels open, refused %s", open_now,
                             self.max_kernels, notebook)
            self.set_status(503)
            self.set_header("Retry-After", str(classroom.RETRY_AFTER_S))
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            self.finish(classroom.full_page(open_now, self.max_kernels))
            return
        self._mark_pool_active()
        ClassroomHandler.arriving += 1
        counted = True
        try:
            async for snippet in self.get_generator(path=path):
                if counted:  # the first snippet: this visitor's kernel is listed now
                    ClassroomHandler.arriving -= 1
                    counted = False
                self.write(snippet)
                self.flush()
        finally:
            if counted:
                ClassroomHandler.arriving -= 1


class ClassroomVoila(Voila):
    """Voila serving the notebooks folder, its dashboards behind `ClassroomHandler`."""

    max_kernels = Int(0, config=True,
                      help="Most visitors' kernels at once; past it a visitor gets the "
                           "'class is full' page (HTTP 503). 0: no cap.")

    def init_handlers(self) -> list:
        handlers = []
        for spec in super().init_handlers():
            if len(spec) >= 2 and spec[1] is TornadoVoilaHandler:
                kwargs = {**(spec[2] if len(spec) > 2 else {}), "max_kernels": self.max_kernels}
                spec = (spec[0], ClassroomHandler, kwargs)
            handlers.append(spec)
        return handlers


main = ClassroomVoila.launch_instance

if __name__ == "__main__":
    main()
