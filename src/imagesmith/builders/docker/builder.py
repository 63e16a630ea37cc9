"""``docker``: build a container image from a base image, through the Engine API.

The recipe: pull (when asked) and read the base image, start a container, connect the
docker communicator, run the provisioners, then commit, export or discard. The
container is removed whatever happens; if the process is killed, ``imagesmith cleanup``
finds it through the run's journal (``leftovers``).

What differs from Packer 1.6.6, on purpose:

- The committed image keeps the base image's ENTRYPOINT and CMD unless ``changes``
  set them. Packer committed the container's own, so its images ended up with
  ``ENTRYPOINT ["/bin/sh"]`` and no CMD (from its default ``--entrypoint=/bin/sh``).
  ENV, WORKDIR, USER, labels, ports and volumes are the base image's in both, plus
  whatever ``run_command`` set (``-e``, ``-w``, ``-u``), then ``changes``.
- No temporary folder is shared with the container, so "Creating a temporary
  directory for sharing data..." is not printed, and ``Run command: docker run ...``
  is printed only when the template gives ``run_command`` (it shows the ``docker
  run`` equivalent of what is created through the API).
- Without ``--network`` in ``run_command``, the container joins the daemon's default
  network when it has a bridge, and ``none`` when the daemon runs with
  ``--bridge=none``.
- With ``pull: false`` an image missing locally is an error at once; Packer's
  ``docker run`` would have tried to pull it anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from imagesmith.builders.docker.artifact import BUILDER_ID, IMPORT_ID, export_artifact
from imagesmith.builders.docker.artifact import image_artifact as _image_artifact
from imagesmith.builders.docker.config import DockerConfig, parse_run, validate
from imagesmith.builders.docker.runflags import RunCommandError, RunSpec
from imagesmith.errors import ConfigError
from imagesmith.plugins import Builder

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.engine.build import BuildRun
    from imagesmith.engine.step import Step


class DockerBuilder(Builder):
    type_name = "docker"
    builder_id = BUILDER_ID
    Config: ClassVar[type[DockerConfig]] = DockerConfig
    config: DockerConfig

    def generated_data_keys(self) -> tuple[str, ...]:
        return ("ImageSha256",)

    def _render_run_command(self) -> list[str]:
        data = {"Image": self.config.image}
        return [self.info.renderer.render(a, data=data) for a in self.config.run_command]

    def _run_spec(self) -> tuple[list[str], RunSpec]:
        rendered = self._render_run_command()
        return self.config.run_args(rendered), parse_run(self.config, rendered)

    def prepare(self) -> list[str]:
        spec: RunSpec | Exception | None = None
        try:
            self._run_spec()
        except RunCommandError as e:
            spec = e
        except Exception as e:  # a template error in run_command
            spec = RunCommandError(f"run_command: {e}")
        errs = validate(self.config, spec)
        if errs:
            raise ConfigError(errs)
        return []

    async def run(self, build: BuildRun) -> Artifact | None:
        from imagesmith import journal
        from imagesmith.builders.docker import client as dc
        from imagesmith.builders.docker import steps as st

        args, spec = self._run_spec()
        client = await dc.call(dc.connect)
        run_journal = journal.for_run(self.info.run_uuid)
        state = st.DockerState(
            config=self.config,
            client=client,
            journal=run_journal,
            spec=spec,
            run_command_given=bool(self.config.run_command),
            run_args=args,
        )
        workflow: list[Step[st.DockerState]] = [
            st.StepPull(),
            st.StepRun(),
            st.StepConnect(),
            build.provision_step(lambda s: s.comm),
        ]
        if self.config.commit:
            workflow.append(st.StepCommit())
        elif self.config.export_path:
            workflow.append(st.StepExport())
        run_journal.open()
        try:
            await build.run_steps(workflow, state)
        finally:
            client.close()
            run_journal.release()

        if build.cancelled:
            return None
        data = dict(build.generated_data)
        if self.config.commit:
            return _image_artifact(IMPORT_ID, state.image_id, generated_data=data)
        return export_artifact(self.config.export_path, data)
