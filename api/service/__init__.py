"""The API's service layer: the use cases the routes call (register a referral, steer a
case, complete a task, write the events and vault notes the API authors), over the ports
Temporal, the event store, the person vault and the accounts. Nothing here knows HTTP
requests; routes parse, call a service, and shape the answer (decision 0048)."""
