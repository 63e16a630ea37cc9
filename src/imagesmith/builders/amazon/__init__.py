"""The amazon builders (``amazon-ebs``): configuration, AWS access and the AMI workflow.

How the package is laid out:

``access``, ``ami_config``, ``run_config``, ``block_devices``
    The template options, decoded into dataclasses and checked the way Packer 1.6.6
    checks them (same messages, same order), before any API call.
``regions``
    The regions this version knows, for the check ``validate`` makes.
``aws``, ``retry``, ``waiters``
    The build path's AWS plumbing: boto3 clients (imported only when a build runs),
    retries with backoff and jitter, and waiters with Packer's timings.
``state``, ``template_data``, ``tracking``
    What the steps share, the ``{{ .SourceAMI }}`` family of template data, and the
    record of every resource a build creates (journal and run-id tag).
``step_*``
    One module per family of steps, in the order the build runs them.
``artifact``, ``ebs``
    The AMI artifact, and the ``amazon-ebs`` builder tying it all together.
"""
