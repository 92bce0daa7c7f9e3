"""How a Stowage process runs, whatever the component: shared by every entry point.

- ``config``: the one reader of settings (a flag beats its variable beats the default);
- ``logging``: JSON log lines with the correlation id;
- ``supervisor``: several processes of one component on one port (``--processes N``);
- ``lifeline``: a child process that ends with the process that started it.

Not part of the gateway↔worker↔operator contract (the modules beside this
package): nothing here knows a tenant, a tool or a spec field.
"""
