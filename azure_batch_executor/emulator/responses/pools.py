"""Handlers for pools, nodes and node counts: parse, call one backend method, serialize.

Imports: the standard library and sibling emulator modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from .. import paging, schema
from ..models.base import conditions
from . import shapes
from .base import NODE_FIELDS, POOL_FIELDS, BaseResponses, Request, Response


class PoolResponses(BaseResponses):
    def _pool_url(self, req: Request, pool_id: str) -> str:
        return f"{req.base_url}/pools/{pool_id}"

    def create_pool(self, req: Request) -> Response:
        spec = self.body(req, schema.POOL_CREATE)
        with self.backend.op():
            pool = self.backend.create_pool(spec)
            headers = self.entity_headers(pool.etag, pool.last_modified,
                                          self._pool_url(req, pool.id), created=True)
        return Response(201, headers)

    def get_pool(self, req: Request, poolId: str) -> Response:
        self.expand(req)
        select = self.select(req, POOL_FIELDS)
        with self.backend.op(wake=False):
            pool = self.backend.pool(poolId)
            conditions(pool, req.headers, read=True)
            doc = shapes.pool(pool.to_json(req.base_url, self.casing), req.api_version)
            return self.entity(req, "pools", doc, pool.etag, pool.last_modified, select)

    def pool_exists(self, req: Request, poolId: str) -> Response:
        with self.backend.op(wake=False):
            pool = self.backend.pool(poolId)
            conditions(pool, req.headers, read=True)
            return Response(200, self.entity_headers(pool.etag, pool.last_modified))

    def list_pools(self, req: Request) -> Response:
        self.expand(req)
        select = self.select(req, POOL_FIELDS)
        backend = self.backend

        def entries(start: int) -> Iterable[tuple[int, Callable[[], dict[str, Any]]]]:
            for pool in list(backend.pools.values()):
                if pool.seq >= start:
                    yield pool.seq, partial(_pool_json, pool, req.base_url, self.casing,
                                            req.api_version)

        return self.listing(req, "pools", "pools", entries, select)

    def update_pool(self, req: Request, poolId: str) -> Response:
        changes = self.body(req, schema.POOL_UPDATE)
        with self.backend.op():
            conditions(self.backend.pool(poolId), req.headers, read=False)
            pool = self.backend.update_pool(poolId, changes)
            headers = self.entity_headers(pool.etag, pool.last_modified,
                                          self._pool_url(req, pool.id))
        return Response(200, headers)

    def delete_pool(self, req: Request, poolId: str) -> Response:
        self.no_body(req)
        with self.backend.op():
            conditions(self.backend.pool(poolId), req.headers, read=False)
            self.backend.delete_pool(poolId)
        return self.accepted()

    def resize_pool(self, req: Request, poolId: str) -> Response:
        changes = self.body(req, schema.POOL_RESIZE)
        with self.backend.op():
            conditions(self.backend.pool(poolId), req.headers, read=False)
            pool = self.backend.resize_pool(poolId, changes)
            headers = self.action_headers(req, pool.etag, pool.last_modified)
        return self.accepted(headers)

    def stop_pool_resize(self, req: Request, poolId: str) -> Response:
        self.no_body(req)
        with self.backend.op():
            conditions(self.backend.pool(poolId), req.headers, read=False)
            pool = self.backend.stop_resize(poolId)
            headers = self.action_headers(req, pool.etag, pool.last_modified)
        return self.accepted(headers)

    # --- autoscale (models/autoscale_ops.py) --------------------------------------------------

    def enable_pool_auto_scale(self, req: Request, poolId: str) -> Response:
        body = self.body(req, schema.POOL_ENABLE_AUTOSCALE, optional=True)
        with self.backend.op():
            conditions(self.backend.pool(poolId), req.headers, read=False)
            pool = self.backend.enable_autoscale(poolId, body.get("autoScaleFormula"),
                                                 body.get("autoScaleEvaluationInterval"))
            headers = self.entity_headers(pool.etag, pool.last_modified,
                                          self._pool_url(req, pool.id))
        return Response(200, headers)

    def disable_pool_auto_scale(self, req: Request, poolId: str) -> Response:
        self.no_body(req)
        with self.backend.op():
            pool = self.backend.disable_autoscale(poolId)
            headers = self.entity_headers(pool.etag, pool.last_modified,
                                          self._pool_url(req, pool.id))
        return Response(200, headers)

    def evaluate_pool_auto_scale(self, req: Request, poolId: str) -> Response:
        body = self.body(req, schema.POOL_EVALUATE_AUTOSCALE)
        with self.backend.op(wake=False):
            run = self.backend.evaluate_autoscale(poolId, body["autoScaleFormula"])
            pool = self.backend.pool(poolId)
            headers = self.entity_headers(pool.etag, pool.last_modified,
                                          self._pool_url(req, pool.id))
        doc = {"odata.metadata": f"{req.base_url}/$metadata#Microsoft.Azure.Batch.Protocol."
                                 "Entities.AutoScaleRun", **run}
        return self.json_response(doc, 200, headers)

    # --- nodes ------------------------------------------------------------------------------

    def list_nodes(self, req: Request, poolId: str) -> Response:
        select = self.select(req, NODE_FIELDS)
        with self.backend.op(wake=False):
            self.backend.pool(poolId)
        backend = self.backend

        def entries(start: int) -> Iterable[tuple[int, Callable[[], dict[str, Any]]]]:
            pool = backend.pool(poolId)
            nodes = list(pool.nodes.values())
            for i, node in enumerate(nodes[start:], start):
                yield i, partial(_node_json, node, req.base_url, pool, req.api_version)

        return self.listing(req, "nodes", "nodes", entries, select)

    def get_node(self, req: Request, poolId: str, nodeId: str) -> Response:
        select = self.select(req, NODE_FIELDS)
        with self.backend.op(wake=False):
            pool, node = self.backend.node(poolId, nodeId)
            doc = shapes.node(node.to_json(req.base_url, pool), req.api_version)
            body = {"odata.metadata": f"{req.base_url}/$metadata#nodes/@Element"}
            body.update(paging.project(doc, select))
        return self.json_response(body)

    def reboot_node(self, req: Request, poolId: str, nodeId: str) -> Response:
        body = self.body(req, schema.NODE_REBOOT, optional=True)
        with self.backend.op():
            node = self.backend.reboot_node(poolId, nodeId, body.get("nodeRebootOption"))
            headers = self.action_headers(req, node.etag, node.last_modified)
        return self.accepted(headers)

    def list_pool_node_counts(self, req: Request) -> Response:
        backend = self.backend

        def entries(start: int) -> Iterable[tuple[int, Callable[[], dict[str, Any]]]]:
            for pool in list(backend.pools.values()):
                if pool.seq >= start:
                    yield pool.seq, pool.node_counts

        return self.listing(req, "poolnodecounts", "nodecounts", entries)


def _pool_json(pool: Any, base_url: str, casing: Any, version: str) -> dict[str, Any]:
    return shapes.pool(pool.to_json(base_url, casing), version)


def _node_json(node: Any, base_url: str, pool: Any, version: str) -> dict[str, Any]:
    return shapes.node(node.to_json(base_url, pool), version)
