"""A user's voicemail messages: list, details, the recording, read/unread, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from b2bua.api.context import PROBLEMS, ApiContext, Auth, Context, Principal, user_of
from b2bua.api.models import MessageList, MessageUpdate, MessageView
from b2bua.telecommuter.users import Message

router = APIRouter(prefix="/v1/users/{user_id}/voicemail", tags=["voicemail"],
                   responses={**PROBLEMS, 410: PROBLEMS[404] | {"description": "Gone"}})


def _message(ctx: ApiContext, p: Principal, user_id: str, message_id: str) -> Message:
    return ctx.domain.mailbox.message(user_of(ctx, p, user_id).id, message_id)


@router.get("")
async def list_messages(user_id: str, p: Auth, ctx: Context) -> MessageList:
    msgs = ctx.domain.mailbox.messages(user_of(ctx, p, user_id).id)
    return MessageList(messages=[MessageView.model_validate(m.public()) for m in msgs], total=len(msgs),
                       unread=sum(1 for m in msgs if not m.read))


@router.get("/{message_id}")
async def get_message(user_id: str, message_id: str, p: Auth, ctx: Context) -> MessageView:
    return MessageView.model_validate(_message(ctx, p, user_id, message_id).public())


@router.get("/{message_id}/audio", response_class=FileResponse,
            responses={200: {"content": {"audio/wav": {}}, "description": "the recording (8 kHz mono WAV)"}})
async def message_audio(user_id: str, message_id: str, p: Auth, ctx: Context) -> FileResponse:
    m = _message(ctx, p, user_id, message_id)
    path = ctx.domain.mailbox.audio(m)
    return FileResponse(path, media_type="audio/wav", filename=f"voicemail-{m.id}.wav")


@router.patch("/{message_id}")
async def mark_message(user_id: str, message_id: str, body: MessageUpdate, p: Auth, ctx: Context) -> MessageView:
    m = _message(ctx, p, user_id, message_id)
    return MessageView.model_validate(ctx.domain.mailbox.mark(m, body.read).public())


@router.delete("/{message_id}", status_code=204)
async def delete_message(user_id: str, message_id: str, p: Auth, ctx: Context) -> Response:
    ctx.domain.mailbox.delete(_message(ctx, p, user_id, message_id))
    return Response(status_code=204)
