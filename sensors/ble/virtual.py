"""A virtual radio: BLE with no hardware, on bumble's ``LocalLink`` and virtual controllers.

Every bumble host (a virtual sensor, or the central our bleak backend drives) talks HCI to its own
controller; the controllers exchange link-layer PDUs over one :class:`VirtualRadio`. Hosts in
*this* process attach directly (:meth:`VirtualRadio.attach`); hosts in *other* processes reach the
radio through :meth:`VirtualRadio.serve_hci`, a TCP server that gives each incoming connection a
controller of its own. The remote side opens it with bumble's stock transport
``tcp-client:HOST:PORT``, so ``--ble-transport`` takes the same kind of spec as for a real USB
dongle (``usb:0``).

Why not bumble's own ``tcp-server`` transport (as in its ``bumble-controllers`` app)? That binds
one controller to a port for the life of the process: one host at a time, and a host that exits
leaves its links and scan state behind in the controller, so the sensors it was connected to stay
"connected" (and silent) until the server restarts. Here a controller lives exactly as long as its
TCP connection, several processes (``runmon scan`` next to ``runmon record``) share the sensors,
and a host that goes away drops its links as a supervision timeout would.

:class:`VirtualController` fixes one gap in bumble 0.0.236's controller that a central depends
on: *LE Create Connection Cancel* is acknowledged but never completed, so a connect that times
out would wait forever for its LE Connection Complete and leave the controller stuck connecting.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from types import TracebackType
from typing import Final, Self

from bumble import core, hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import PacketParser

__all__ = ["HciServer", "VirtualController", "VirtualRadio"]

logger = logging.getLogger(__name__)

#: The reason a peer sees when a controller leaves the radio: what a real link reports when the
#: other side goes silent (battery dead, out of range, process killed).
SUPERVISION_TIMEOUT: Final = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR


class VirtualController(Controller):
    """bumble's virtual controller, plus a spec-conformant connection cancel and a clean exit."""

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Core spec Vol 4 Part E 7.8.13: complete the cancelled connection with status 0x02."""
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        # Queued now, delivered after the Command Complete our caller sends for this command:
        # the host must see the command completed before the connection it cancelled.
        asyncio.get_running_loop().call_soon(self._complete_cancelled, pending.peer_address)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def _complete_cancelled(self, peer_address: hci.Address) -> None:
        self.send_hci_packet(
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=peer_address.address_type,
                peer_address=peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
        )

    def leave(self, reason: int = SUPERVISION_TIMEOUT) -> None:
        """Go silent: stop advertising, scanning and connecting, and end every LE link.

        Peers get a Disconnection Complete with ``reason``; so does this controller's own host,
        if it is still listening.
        """
        self.le_legacy_advertiser.stop()
        for advertising_set in self.advertising_sets.values():
            advertising_set.stop()
        self.le_scan_enable = False
        self.pending_le_connection = None
        for connection in list(self.le_connections.values()):
            connection.send_ll_control_pdu(ll.TerminateInd(reason))
            self.on_le_disconnected(connection, reason)


class VirtualRadio:
    """One shared 2.4 GHz medium in this process: a ``LocalLink`` and its controllers."""

    def __init__(self) -> None:
        # bumble 0.0.236 leaves LocalLink.__init__ unannotated; it takes no arguments.
        self._link = LocalLink()  # type: ignore[no-untyped-call]
        self._names = itertools.count(1)

    @property
    def controller_count(self) -> int:
        return len(self._link.controllers)

    def attach(self, name: str | None = None) -> VirtualController:
        """A new controller on this radio; wire a bumble ``Host`` to it."""
        return VirtualController(name or f"C{next(self._names)}", link=self._link)

    def detach(self, controller: VirtualController, reason: int = SUPERVISION_TIMEOUT) -> None:
        """Take ``controller`` off the radio; its peers see their links end with ``reason``."""
        controller.leave(reason)
        if controller in self._link.controllers:
            self._link.remove_controller(controller)

    async def serve_hci(self, host: str = "127.0.0.1", port: int = 0) -> HciServer:
        """Serve HCI over TCP on ``host:port`` (0: a free port) for hosts in other processes."""
        server = HciServer(self)
        await server.start(host, port)
        return server


class HciServer:
    """TCP server: each connection is one remote host with its own controller on the radio.

    The wire format is HCI H4 (packet type byte, then the packet), as bumble's ``tcp-client``
    transport speaks it. Use as ``async with await radio.serve_hci() as server: ...``.
    """

    def __init__(self, radio: VirtualRadio) -> None:
        self._radio = radio
        self._server: asyncio.Server | None = None
        self._connections: set[_HciConnection] = set()
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _HciConnection(self._radio, self._connections), host, port
        )
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        logger.info("virtual radio: HCI over TCP on %s", self.transport_spec)

    @property
    def transport_spec(self) -> str:
        """What a host in another process passes as its bumble transport."""
        return f"tcp-client:{self.host}:{self.port}"

    @property
    def host_count(self) -> int:
        return len(self._connections)

    async def aclose(self) -> None:
        """Stop listening and drop every remote host (their links end at the peers)."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for connection in list(self._connections):
            connection.close()
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _HciConnection(asyncio.Protocol):
    """One remote host: H4 bytes in -> its controller; the controller's packets -> TCP."""

    def __init__(self, radio: VirtualRadio, registry: set[_HciConnection]) -> None:
        self._radio = radio
        self._registry = registry
        self._transport: asyncio.Transport | None = None
        self._controller: VirtualController | None = None
        self._parser: PacketParser | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._controller = self._radio.attach(f"tcp:{peer}")
        self._controller.host = self
        self._parser = PacketParser(self._controller)
        self._registry.add(self)
        logger.info("virtual radio: host %s attached", peer)

    def on_packet(self, packet: bytes) -> None:
        """Controller -> host (the controller calls this as its HCI sink)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(packet)

    def data_received(self, data: bytes) -> None:
        assert self._parser is not None
        try:
            self._parser.feed_data(data)
        except core.InvalidPacketError as error:
            # The stream cannot be resynchronised: drop this host, keep the radio.
            logger.warning("virtual radio: dropping host sending invalid HCI (%s)", error)
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.discard(self)
        if self._controller is not None:
            self._controller.host = None
            self._radio.detach(self._controller)
            logger.info("virtual radio: host %s detached", self._controller.name)
            self._controller = None
        self._transport = None
