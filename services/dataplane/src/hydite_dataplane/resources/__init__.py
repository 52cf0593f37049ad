"""Provider-stored objects (stored responses today; files, batches and vector stores next): signed
gateway ids that name the deployment and the owner (`ids`), and the table-driven relay of the
routes that reach them (`stored`)."""
