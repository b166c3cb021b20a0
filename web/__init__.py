"""The caregiver's local web page: a separate process that is a control-socket client.

Reaches the controller only through the control socket (the requests the CLI sends,
``firmware_host.control_client``), reads the record through the read-only APIs the CLI
uses, and checks prescriptions with the CLI's own checks. Never opens the serial port,
never imports the safety core or the drivers, and can do nothing the pad's button and
the CLI cannot (docs/web.md, docs/security.md).
"""
