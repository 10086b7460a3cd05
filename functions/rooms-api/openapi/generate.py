#!/usr/bin/env python3
"""Writes openapi.json beside it, the OpenAPI 3.1 document of the HTTP API that rooms-api serves
at GET /v1/openapi.json. Edit this file, then run it: `python3 generate.py > openapi.json`.
local/src/routes.rs checks the document against the routers (every /v1 route and method, both
ways, and every schema reference resolves)."""
import json
ref=lambda n: {"$ref": f"#/components/schemas/{n}"}
def js(schema): return {"content":{"application/json":{"schema":schema}}}
def err(desc): return {"description":desc, **js(ref("Error"))}
E401=err("Not authenticated (`AUTH_BACKEND=jwt`, an anonymous caller where a user is needed) or invalid credentials (a bearer token that does not verify)")
E404R=err("Room not found (or not the caller's)")
E404M=err("Meeting not found")
E413=err("Request body too large (over 64 KiB)")
E422={"description":"Invalid input: FastAPI's validation body, one entry per problem", **js(ref("ValidationError"))}
E503=err("The database is unavailable; try again shortly")
E500=err("A stored item could not be read")
E504=err("The request ran out of time (the video platform or the database did not answer in time); try again")
def responses(ok, *extra):
    r={"200":ok}
    for code,val in extra: r[code]=val
    r.setdefault("413",E413); r.setdefault("503",E503)
    return r
room_id={"name":"room_id","in":"path","required":True,"schema":{"type":"string","minLength":1}}
room_name={"name":"room_name","in":"path","required":True,"schema":{"type":"string","minLength":1}}
meeting_id={"name":"meeting_id","in":"path","required":True,"schema":{"type":"string","minLength":1}}
bearer=[{},{"bearer":[]}]
def op(opid, summary, params, resp, body=None, tags=("rooms",), security=bearer):
    # Every rooms-api request is cut off with 504 before its invocation's deadline (the
    # webhooks answer within theirs without a cut-off of their own).
    if "webhooks" not in tags: resp.setdefault("504",E504)
    o={"operationId":opid,"summary":summary,"tags":list(tags),"responses":resp}
    if params: o["parameters"]=params
    if body: o["requestBody"]=body
    if security is not None: o["security"]=security
    return o
json_body=lambda s, req=True: {"required":req,"content":{"application/json":{"schema":s}}}
room_fields={
  "zulip_auto_post":{"type":"boolean"},
  "zulip_stream":{"type":"string","maxLength":1000},
  "zulip_topic":{"type":"string","maxLength":1000},
  "is_locked":{"type":"boolean"},
  "room_mode":ref("RoomMode"),
  "recording_type":ref("RecordingType"),
  "recording_trigger":ref("RecordingTrigger"),
  "is_shared":{"type":"boolean"},
  "skip_consent":{"type":"boolean"},
}
name_schema={"type":"string","minLength":1,"maxLength":100,"pattern":"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
  "description":"Lowercase letters, digits and hyphens, usable as a platform room name"}
def linked(ok, links):
    """The 200 answer `ok` with OpenAPI links: `{name: (operationId, {parameter: expression})}`,
    so clients (and schemathesis's stateful phase) can follow a created room or meeting."""
    return {**ok, "links": {name: {"operationId": opid, "parameters": params} for name, (opid, params) in links.items()}}
new_room_id={"room_id": "$response.body#/id"}
new_room_name={"room_name": "$response.body#/name"}
room_links={
  "GetRoom": ("get_room", new_room_id), "UpdateRoom": ("update_room", new_room_id),
  "DeleteRoom": ("delete_room", new_room_id), "GetRoomByName": ("get_room_by_name", new_room_name),
  "RoomMeeting": ("room_meeting", new_room_name), "ActiveMeetings": ("active_meetings", new_room_name),
}
meeting_of_room={"room_name": "$request.path.room_name", "meeting_id": "$response.body#/id"}
new_meeting_id={"meeting_id": "$response.body#/id"}
meeting_links={
  "GetMeeting": ("get_meeting", meeting_of_room), "JoinMeeting": ("join_meeting", meeting_of_room),
  "MeetingConsent": ("meeting_consent", new_meeting_id), "DeactivateMeeting": ("deactivate_meeting", new_meeting_id),
  "StartRecording": ("start_recording", new_meeting_id),
}
paths={
 "/v1/rooms":{
  "get":op("list_rooms","The caller's rooms and the shared rooms, newest first, one page",
    [{"name":"page","in":"query","schema":{"type":"integer","minimum":1,"default":1},"description":"1-based page number (at most 1000 rooms deep)"},
     {"name":"size","in":"query","schema":{"type":"integer","minimum":1,"maximum":100,"default":50}},
     {"name":"cursor","in":"query","schema":{"type":"string"},"description":"`next_cursor` of the previous page; overrides `page`"}],
    responses({"description":"One page of rooms",**js(ref("RoomPage"))},("401",err("Not authenticated (anonymous and not `PUBLIC_MODE`) or invalid credentials")),("422",E422),("500",E500))),
  "post":op("create_room","Create a room",[],
    responses(linked({"description":"The room",**js(ref("Room"))},room_links),("400",err("Room name is not unique")),("401",E401),("422",E422)),
    body=json_body({"type":"object","required":["name"],"properties":{"name":name_schema,**room_fields}})),
 },
 "/v1/rooms/{room_id}":{
  "get":op("get_room","The room: its owner's, shared, or anyone's with `AUTH_BACKEND=none`",[room_id],
    responses({"description":"The room",**js(ref("Room"))},("401",E401),("404",E404R),("500",E500))),
  "patch":op("update_room","Partial update; the owner only",[room_id],
    responses({"description":"The room after the update",**js(ref("Room"))},("400",err("Room name is not unique")),("401",E401),("404",E404R),("409",err("The room was changed concurrently, try again")),("422",E422),("500",E500)),
    body=json_body({"type":"object","properties":{"name":name_schema,**room_fields}})),
  "delete":op("delete_room","Delete the room; the owner only",[room_id],
    responses({"description":"Deleted",**js(ref("Status"))},("401",E401),("404",E404R),("409",err("The room was changed concurrently, try again")),("500",E500))),
 },
 "/v1/rooms/name/{room_name}":{
  "get":op("get_room_by_name","The room by name (the room page's first request)",[room_name],
    responses({"description":"The room",**js(ref("Room"))},("401",E401),("404",E404R),("500",E500))),
 },
 "/v1/rooms/{room_name}/meeting":{
  "post":op("room_meeting","Get or create the room's active meeting",[room_name],
    responses(linked({"description":"The active meeting",**js(ref("Meeting"))},meeting_links),("401",E401),("404",E404R),("500",E500),("502",err("The video platform failed"))),tags=("meetings",)),
 },
 "/v1/rooms/{room_name}/meetings/active":{
  "get":op("active_meetings","The room's active meetings (at most one)",[room_name],
    responses({"description":"Active meetings",**js({"type":"array","items":ref("Meeting")})},("401",E401),("404",E404R),("500",E500)),tags=("meetings",)),
 },
 "/v1/rooms/{room_name}/meetings/{meeting_id}":{
  "get":op("get_meeting","That meeting of the room",[room_name,meeting_id],
    responses({"description":"The meeting",**js(ref("Meeting"))},("401",E401),("404",err("Room or meeting not found")),("500",E500)),tags=("meetings",)),
 },
 "/v1/rooms/{room_name}/meetings/{meeting_id}/join":{
  "post":op("join_meeting","The meeting with a room_url admitting the caller (Daily: a meeting token)",[room_name,meeting_id],
    responses({"description":"The meeting",**js(ref("Meeting"))},("400",err("Meeting is not active")),("401",E401),("404",err("Room or meeting not found")),("500",E500),("502",err("Daily could not admit the participant"))),tags=("meetings",)),
 },
 "/v1/meetings/{meeting_id}/consent":{
  "post":op("meeting_consent","Record the caller's recording consent",[meeting_id],
    responses({"description":"Stored",**js(ref("ConsentStatus"))},("401",E401),("404",E404M),("422",E422),("500",E500)),
    body=json_body({"type":"object","required":["consent_given"],"properties":{"consent_given":{"type":"boolean"}}}),tags=("meetings",)),
 },
 "/v1/meetings/{meeting_id}/deactivate":{
  "patch":op("deactivate_meeting","End the meeting; the room owner only with `AUTH_BACKEND=jwt`",[meeting_id],
    responses({"description":"Ended",**js(ref("SuccessStatus"))},("401",E401),("403",err("Only the room owner can do this")),("404",E404M),("500",E500)),tags=("meetings",)),
 },
 "/v1/meetings/{meeting_id}/recordings/start":{
  "post":op("start_recording","Start a Daily recording of the meeting now",[meeting_id],
    responses({"description":"Started, or already started",**js(ref("RecordingStartStatus"))},("400",err("Meeting is not an active Daily meeting")),("401",E401),("403",err("Only the room owner can do this")),("404",E404M),("422",E422),("500",E500),("502",err("Daily could not start the recording"))),
    body=json_body({"type":"object","required":["type"],"properties":{"type":ref("RecordingKind")}}),tags=("meetings",)),
 },
 "/v1/openapi.json":{
  "get":op("openapi","This document",[],{"200":{"description":"The OpenAPI 3.1 document of the HTTP API","content":{"application/json":{"schema":{"type":"object"}}}}},tags=("meta",),security=None),
 },
 "/v1/daily_webhook":{
  "post":op("daily_webhook","Daily's webhook events (signed: X-Webhook-Signature and X-Webhook-Timestamp, or the seed's X-Daily-Signature)",
    [{"name":"X-Webhook-Signature","in":"header","schema":{"type":"string"}},
     {"name":"X-Webhook-Timestamp","in":"header","schema":{"type":"string"}},
     {"name":"X-Daily-Signature","in":"header","schema":{"type":"string"}}],
    {"200":{"description":"Accepted (also duplicates, unknown meetings and types, and Daily's probe)",**js(ref("OkStatus"))},
     "401":err("Missing signature or Invalid signature"),"413":E413,
     "422":{"description":"Signed but malformed body",**js(ref("WebhookError"))},
     "503":err("Could not apply the event now, or another delivery of it is being handled (with Retry-After); the platform retries")},
    body={"required":False,"content":{"application/json":{"schema":ref("DailyEvent")}}},tags=("webhooks",),security=None),
 },
 "/v1/whereby":{
  "post":op("whereby_webhook","Whereby's webhook events (signed: Whereby-Signature)",
    [{"name":"Whereby-Signature","in":"header","schema":{"type":"string"}}],
    {"200":{"description":"Accepted (also duplicates and unknown types)",**js(ref("OkStatus"))},
     "401":err("Missing signature or Invalid signature"),"413":E413,
     "422":{"description":"Signed but malformed body",**js(ref("WebhookError"))},
     "503":err("Could not apply the event now, or another delivery of it is being handled (with Retry-After); the platform retries")},
    body={"required":False,"content":{"application/json":{"schema":ref("WherebyEvent")}}},tags=("webhooks",),security=None),
 },
}
ts={"type":"string","format":"date-time"}
def event_type(handled):
    """An event's `type`: one the backend acts on, or any other (accepted and ignored)."""
    return {"anyOf":[{"enum":handled},{"type":"string"}]}
s_=lambda: {"type":"string"}
daily_data={"type":"object","description":"The event's fields; those a type does not use are ignored",
  "properties":{"room":{"anyOf":[s_(),{"type":"object","properties":{"name":s_()}}]},"room_name":s_(),
    "session_id":s_(),"user_id":s_(),"user_name":s_(),"joined_at":{"type":"number"},"duration":{"type":"number"},
    "recording_id":s_(),"s3_key":s_(),"type":s_(),"error_msg":s_(),"error":s_(),
    "tracks":{"type":"array","items":{"type":"object","properties":{"type":s_(),"s3Key":s_(),"size":{"type":"integer"}}}},
    "participant":{"type":"object","properties":{"id":s_(),"session_id":s_(),"user_id":s_(),"user_name":s_()}},
    "recording":{"type":"object","properties":{"id":s_(),"download_url":s_(),"s3_key":s_(),"error":s_(),"error_msg":s_()}}}}
schemas={
 "Platform":{"type":"string","enum":["whereby","daily","mock"]},
 "RoomMode":{"type":"string","enum":["normal","group"]},
 "RecordingType":{"type":"string","enum":["none","local","cloud"]},
 "RecordingTrigger":{"type":"string","enum":["none","prompt","automatic-2nd-participant","automatic"]},
 "RecordingKind":{"type":"string","enum":["cloud","raw-tracks"]},
 "Room":{"type":"object","required":["id","name","user_id","created_at","zulip_auto_post","zulip_stream","zulip_topic","is_locked","room_mode","recording_type","recording_trigger","is_shared","platform","skip_consent"],
   "properties":{"id":{"type":"string"},"name":{"type":"string"},"user_id":{"type":["string","null"]},"created_at":ts,
     "zulip_auto_post":{"type":"boolean"},"zulip_stream":{"type":"string"},"zulip_topic":{"type":"string"},"is_locked":{"type":"boolean"},
     "room_mode":ref("RoomMode"),"recording_type":ref("RecordingType"),"recording_trigger":ref("RecordingTrigger"),
     "is_shared":{"type":"boolean"},"platform":ref("Platform"),"skip_consent":{"type":"boolean"}},"additionalProperties":False},
 "RoomPage":{"type":"object","required":["items","total","page","size","pages","next_cursor"],
   "properties":{"items":{"type":"array","items":ref("Room")},
     "total":{"type":["integer","null"],"minimum":0,"description":"Known only on the last page of a listing from its start"},
     "page":{"type":["integer","null"],"minimum":1,"description":"null when asked by cursor"},
     "size":{"type":"integer","minimum":1,"maximum":100},
     "pages":{"type":["integer","null"],"minimum":0},
     "next_cursor":{"type":["string","null"],"description":"Pass as `cursor` for the next page; null on the last"}},"additionalProperties":False},
 "Meeting":{"type":"object","required":["id","room_name","room_url","host_room_url","start_date","end_date","recording_type","platform","num_clients","is_active"],
   "properties":{"id":{"type":"string"},"room_name":{"type":"string"},"room_url":{"type":"string"},
     "host_room_url":{"type":"string","description":"\"\" unless the caller owns the room"},"start_date":ts,"end_date":ts,
     "recording_type":ref("RecordingType"),"platform":ref("Platform"),"num_clients":{"type":"integer","minimum":0},"is_active":{"type":"boolean"}},"additionalProperties":False},
 "Status":{"type":"object","required":["status"],"properties":{"status":{"const":"ok"}}},
 "OkStatus":{"type":"object","required":["status"],"properties":{"status":{"const":"ok"}}},
 "SuccessStatus":{"type":"object","required":["status"],"properties":{"status":{"const":"success"}}},
 "ConsentStatus":{"type":"object","required":["status","consent_id"],"properties":{"status":{"const":"success"},"consent_id":{"type":"string"}}},
 "RecordingStartStatus":{"type":"object","required":["status"],"properties":{"status":{"enum":["ok","already_active"]}}},
 "Error":{"type":"object","required":["detail"],"properties":{"detail":{"type":"string"}}},
 "DailyEvent":{"type":"object","required":["type","id"],
   "description":"Daily's envelope (`payload`, `event_ts` in seconds) or the seed's (`data`, `ts` in milliseconds); a body that is not one is 422 once its signature holds",
   "properties":{"type":event_type(["participant.joined","participant.left","meeting.started","meeting.ended","recording.started","recording.ready-to-download","recording.error"]),
     "id":{"type":"string","minLength":1},"event_ts":{"type":"number"},"ts":{"type":"number"},"payload":daily_data,"data":daily_data}},
 "WherebyEvent":{"type":"object","required":["type","id"],
   "properties":{"type":event_type(["room.client.joined","room.client.left"]),"id":{"type":"string","minLength":1},"createdAt":ts,
     "data":{"type":"object","properties":{"roomName":s_(),"meetingId":s_(),"participantId":s_(),"roleName":s_(),"numClients":{"type":"integer","minimum":0}}}}},
 "WebhookError":{"type":"object","required":["detail"],"properties":{"detail":{}}},
 "ValidationError":{"type":"object","required":["detail"],"properties":{"detail":{"type":"array","items":{
   "type":"object","required":["type","loc","msg"],"properties":{"type":{"type":"string"},"loc":{"type":"array","items":{"type":["string","integer"]}},"msg":{"type":"string"},"input":{},"ctx":{"type":"object"}}}}}},
}
doc={"openapi":"3.1.0","info":{"title":"Reflector video platforms API","version":"1",
  "description":"The HTTP API of the Reflector rooms backend (DESIGN.md section 6). Errors are `{\"detail\": ...}`. `local/src/routes.rs` checks that every /v1 route of the routers is here with its method, and back."},
  "paths":paths,"components":{"schemas":schemas,"securitySchemes":{"bearer":{"type":"http","scheme":"bearer","bearerFormat":"JWT","description":"RS256 token (`AUTH_BACKEND=jwt`); anonymous when absent"}}}}
print(json.dumps(doc,indent=2))
