"""runmon monitor: samples -> metrics -> cues -> MQTT.

Owns the per-runner streaming state (estimators), the asyncio service that wires sensors to
estimators to rules to MQTT, and the ``runmon`` command line.

Exception tree (all in :mod:`monitor.errors`)::

    MonitorError
    ├── BrokerError          the embedded Mosquitto could not start, or died
    ├── MqttError            talking to a broker failed (connect, publish, subscribe)
    │   ├── PublishRefused   the broker answered a QoS 1 publish with a failure reason code
    │   └── SubscribeRefused the broker answered a SUBSCRIBE with a failure reason code
    ├── InboundMessageError  an inbound MQTT payload (pain, control, raw) that is malformed
    ├── InvalidIdentifier    a runner/sensor/instance id that cannot be a topic level
    ├── HistoryError         the SQLite history cannot be opened, read or written
    └── ConfigError          a config file (runner, service) that does not validate
        └── InvalidBrokerUrl a --broker URL that is not mqtt[s]://[user[:pw]@]host[:port]
"""
