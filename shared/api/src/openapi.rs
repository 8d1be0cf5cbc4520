//! The HTTP API's OpenAPI 3.1 document, built from the code rather than kept by hand:
//! every (method, path) of [`crate::ROUTES`] becomes an operation, its path parameters
//! and query parameters come from the route table ([`crate::Route`]'s `query_keys`), the
//! values a parameter takes come from the domain's vocabularies (`System::ALL`,
//! `Stage::ALL`, ...), and each route's request and response bodies are described by the
//! schemas below, next to the code that answers them. Served at `GET /openapi.json`
//! ([`PATH`]) without a tenant.
//!
//! The schemas describe each body's top level exactly (its fields, which are always
//! there, their types); values the domain keeps open (an account's details, a record's
//! fields, a mapping section) are described as JSON objects.

use serde_json::{Value, json};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr,
    Required, ResponseBuilder, ResponsesBuilder, Schema,
};

use tandem_domain::external::OptionList;
use tandem_domain::{RecordKind, Stage, System};

use crate::{ROUTES, Route};

/// The success answer's description of a route whose bodies [`bodies`] does not describe.
const UNDESCRIBED: &str = "not described in the OpenAPI document yet";

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// Whether a request is for the document (answered without a tenant).
pub fn is_document_request(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("GET") && path.trim_end_matches('/') == PATH
}

/// The document as JSON.
pub fn document_json() -> Value {
    serde_json::to_value(document())
        .unwrap_or_else(|e| json!({ "error": { "kind": "internal", "message": e.to_string() } }))
}

/// The document: one operation per entry of [`ROUTES`].
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut by_path: Vec<(&str, Vec<&str>)> = Vec::new();
    for (method, path) in ROUTES {
        match by_path.iter_mut().find(|(p, _)| p == path) {
            Some((_, methods)) => methods.push(method),
            None => by_path.push((path, vec![method])),
        }
    }
    for (path, methods) in by_path {
        let mut item: Option<PathItem> = None;
        for method in methods {
            let op = operation(method, path);
            let http = http_method(method);
            item = Some(match item {
                None => PathItem::new(http, op),
                Some(mut item) => {
                    item.merge_operations(PathItem::new(http, op));
                    item
                }
            });
        }
        if let Some(item) = item {
            paths = paths.path(path, item);
        }
    }
    let mut components = ComponentsBuilder::new();
    for (name, schema) in components_schemas() {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tandem")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Tandem's HTTP API: connections, mappings, imports, exports, jobs, CRM records and the sync \
                     log. Every route but this document's needs the caller's tenant (the JWT authorizer in AWS, \
                     the x-tenant-id header locally). Every error is {\"error\": {\"kind\", \"message\"}}.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

fn http_method(method: &str) -> HttpMethod {
    match method {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The route a path template names (each `{param}` filled in).
fn route_of(path: &'static str) -> Option<Route<'static>> {
    let segments: Vec<&'static str> =
        path.split('/').filter(|s| !s.is_empty()).map(|s| if s.starts_with('{') { "x" } else { s }).collect();
    Route::resolve(&segments)
}

fn operation(method: &str, path: &'static str) -> utoipa::openapi::path::Operation {
    let route = route_of(path);
    let id = format!(
        "{}{}",
        method.to_ascii_lowercase(),
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_matches(|c| c == '{' || c == '}').replace(['-', '.'], "_"))
            .map(|s| format!("_{s}"))
            .collect::<String>()
    );
    let mut op = OperationBuilder::new().operation_id(Some(id));
    for name in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(path_param(name))),
        );
    }
    for key in route.map(|r| r.query_keys()).unwrap_or_default() {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*key)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(query_param(key))),
        );
    }
    let (body, (status, answer, what)) = bodies(method, path);
    if let Some((schema, required)) = body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
                .required(Some(if required { Required::True } else { Required::False }))
                .build(),
        ));
    }
    let mut responses = ResponsesBuilder::new().response(status.to_string(), json_response(what, answer));
    for (code, what) in errors(path) {
        responses = responses.response(code.to_string(), json_response(what, reference("Error")));
    }
    op.responses(responses.build()).build()
}

fn json_response(what: &str, schema: RefOr<Schema>) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(what)
        .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
        .build()
        .into()
}

/// The error answers a route can give.
fn errors(path: &str) -> Vec<(u16, &'static str)> {
    if path == PATH {
        return vec![(405, "the method is not GET")];
    }
    vec![
        (400, "a bad body, path or query parameter; the message names it"),
        (401, "no valid tenant in the request's authorization"),
        (403, "the authorizer refused the caller"),
        (404, "no such route, connection or record"),
        (405, "the route does not take the method (the Allow header lists those it takes)"),
        (409, "refused in the current state (e.g. an import already running)"),
        (422, "credentials refused by the system, or a request that cannot be processed"),
        (
            429,
            "the system's rate limit, or the connection's API budget, is used up (Retry-After says for how long; \
             the message names when it resumes)",
        ),
        (503, "the external system or a store is unavailable; retry later"),
    ]
}

/// The request body (schema, required) and the success answer (status, schema,
/// description) of one operation.
type Bodies = (Option<(RefOr<Schema>, bool)>, (u16, RefOr<Schema>, &'static str));

fn bodies(method: &str, path: &str) -> Bodies {
    let open = || (open_object("A JSON object; what it holds is checked by the use case"), true);
    match (method, path) {
        ("GET", PATH) => (None, (200, open_object("This OpenAPI 3.1 document"), "the document")),
        ("GET", "/connections") => {
            (None, (200, object(&[("connections", array(reference("Connection")), true)]), "the connections"))
        }
        ("GET", "/connections/{system}") => (None, (200, reference("Connection"), "the connection")),
        ("POST" | "PUT", "/connections/{system}") => (
            Some((open_object("The system's credentials"), true)),
            (201, reference("Connection"), "the credentials were validated and saved"),
        ),
        ("GET", "/connections/{system}/options") => (
            None,
            (
                200,
                object(&[
                    ("lists", array(strings(OptionList::ALL.iter().map(|l| l.as_str()))), true),
                    ("system", system_schema(), true),
                ]),
                "the option lists",
            ),
        ),
        ("GET", "/connections/{system}/options/{list}") => (
            None,
            (
                200,
                object(&[("list", string(), true), ("choices", array(reference("Choice")), true)]),
                "the system's live choices",
            ),
        ),
        ("GET", "/connections/{system}/mappings") => (
            None,
            (
                200,
                object(&[("order", array(stage_schema()), true), ("mappings", open_object("Per stage"), true)]),
                "the saved mappings",
            ),
        ),
        (_, "/connections/{system}/mappings/{stage}") => {
            (Some(open()), (200, object(&[("mappings", open_object("Per stage"), true)]), "the saved mappings"))
        }
        ("POST", "/connections/{system}/imports") => {
            let mut stages = vec!["all"];
            stages.extend(Stage::ALL.iter().map(|s| s.as_str()));
            (
                Some((closed_object(&[("stages", strings(stages), true), ("dry_run", boolean(), false)]), true)),
                (202, reference("Job"), "the import job (with `dry_run`: the preview's), started"),
            )
        }
        ("PUT", "/connections/{system}/settings") => {
            (Some((settings_body(), true)), (200, reference("Settings"), "the connection's settings"))
        }
        (_, "/connections/{system}/settings") => (None, (200, reference("Settings"), "the connection's settings")),
        ("GET", "/connections/{system}/health") => (None, (200, reference("Health"), "the connection's sync health")),
        ("GET", "/logs/{id}") => (None, (200, reference("LogEntry"), "the log entry")),
        ("POST", "/logs/{id}/retry") => (
            None,
            (
                202,
                object(&[
                    ("log_id", string(), true),
                    ("system", system_schema(), true),
                    ("direction", strings(["import", "export", "sync_in", "sync_out", "webhook"]), true),
                    ("queued", strings(["sync_record", "sync_out"]), true),
                    ("dedup_id", string(), true),
                    ("object", kind_schema(), true),
                    ("crm_id", nullable(string()), true),
                    ("external_id", nullable(string()), true),
                ]),
                "the failed operation, queued again",
            ),
        ),
        (m, "/connections/salesforce/field-map") => {
            (if m == "PUT" { Some(open()) } else { None }, (200, reference("FieldMapView"), "the field map"))
        }
        ("POST", "/connections/salesforce/field-map/import") => {
            (None, (202, reference("PollStarted"), "the field-level import, started"))
        }
        ("GET", "/connections/salesforce/selective-sync") => (
            None,
            (
                200,
                object(&[("selective_sync", nullable(reference("SelectiveSync")), true)]),
                "the saved criteria, if any",
            ),
        ),
        ("PUT", "/connections/salesforce/selective-sync") => {
            (Some(open()), (200, object(&[("selective_sync", reference("SelectiveSync"), true)]), "the saved criteria"))
        }
        ("POST", "/connections/{system}/exports") => {
            (Some(open()), (202, object(&[("id", string(), true), ("status", string(), true)]), "the export, queued"))
        }
        ("GET", "/exports/{id}") => (None, (200, reference("Export"), "the export")),
        ("GET", "/jobs") => (None, (200, object(&[("jobs", array(reference("Job")), true)]), "the latest jobs")),
        ("GET", "/jobs/{id}") => (None, (200, reference("Job"), "the job")),
        ("POST", "/jobs/{id}/cancel") => (None, (200, reference("Job"), "the job, cancelled")),
        ("POST", "/jobs/{id}/resume") => (None, (200, reference("Job"), "the job, resumed")),
        ("GET", "/records/{kind}") => (
            None,
            (
                200,
                object(&[
                    ("records", array(reference("Record")), true),
                    ("next", nullable(string()), true),
                    ("unreadable", object(&[("count", integer(), true), ("ids", array(string()), true)]), true),
                ]),
                "a page of records",
            ),
        ),
        ("POST", "/records/{kind}") => (
            Some(open()),
            (201, object(&[("id", string(), true), ("record", reference("Record"), true)]), "the record, created"),
        ),
        ("GET", "/records/{kind}/{id}") => (None, (200, reference("Record"), "the record")),
        ("PATCH", "/records/{kind}/{id}") => (Some(open()), (200, reference("Record"), "the record, updated")),
        ("DELETE", "/records/{kind}/{id}") => (
            None,
            (
                200,
                object(&[("deleted", object(&[("kind", string(), true), ("id", string(), true)]), true)]),
                "the record, deleted",
            ),
        ),
        ("GET", "/logs") => {
            (None, (200, object(&[("entries", array(reference("LogEntry")), true)]), "the matching log entries"))
        }
        ("POST", "/connections/{system}/sync/poll") => (None, (202, reference("PollStarted"), "the poll, started")),
        ("POST", "/connections/{system}/sync/sweep") => (
            Some((closed_object(&[("confirm_deletes", boolean(), false)]), false)),
            (202, object(&[("stages", array(stage_schema()), true)]), "the sweep, started"),
        ),
        ("GET", "/snapshots") => (
            None,
            (200, object(&[("snapshots", array(reference("Snapshot")), true)]), "the tenant's snapshots, newest first"),
        ),
        ("POST", "/snapshots") => {
            let note = ObjectBuilder::new().schema_type(Type::String).max_length(Some(200)).into();
            (
                Some((closed_object(&[("note", note, false)]), false)),
                (201, reference("Snapshot"), "the snapshot, taken"),
            )
        }
        ("POST", "/snapshots/{id}/restore") => (None, (200, reference("Restored"), "what the restore did")),
        ("GET", "/previews") => (
            None,
            (
                200,
                object(&[("previews", array(reference("Preview")), true)]),
                "the tenant's kept previews, newest first",
            ),
        ),
        ("GET", "/previews/{id}") => (None, (200, reference("PreviewReport"), "what the import would do")),
        ("GET", "/dead-letters") => (
            None,
            (
                200,
                object(&[
                    ("dead_letters", array(reference("DeadLetter")), true),
                    ("next", nullable(string_described("The token of the next page (`?token=`)")), true),
                ]),
                "the tenant's dead letters, newest first",
            ),
        ),
        ("POST", "/dead-letters/{id}/redrive") => {
            (None, (202, reference("DeadLetter"), "the dead letter, its work sent to run again now"))
        }
        // A route added to ROUTES without its bodies described here: a unit test fails.
        _ => (Some(open()), (200, open_object("The answer"), UNDESCRIBED)),
    }
}

/// The body of `PUT /connections/{system}/settings`: each field present is set, the
/// others kept (the settings' example is `tandem_domain::settings::EXAMPLE`).
fn settings_body() -> RefOr<Schema> {
    let budget = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(u32::MAX))
        .description(Some("At most this many calls to the system per rolling 24 hours; null removes the cap"))
        .into();
    let mut o = object_builder(&[
        ("export_requires_opportunity", boolean(), false),
        ("auto_sync", strings(["off", "inbound", "outbound", "two_way"]), false),
        ("propagate_deletes", boolean(), false),
        ("api_budget_per_day", nullable(budget), false),
    ]);
    o = o.additional_properties(Some(AdditionalProperties::FreeForm(false))).description(Some(format!(
        "The settings to change (the others are kept), e.g. {}",
        tandem_domain::settings::EXAMPLE
    )));
    o.into()
}

/// A preview's summary, with `more` fields beside it.
fn preview_summary(more: &[(&str, RefOr<Schema>, bool)]) -> RefOr<Schema> {
    let timestamp = || string_described("An RFC 3339 time, UTC");
    let mut fields = vec![
        ("id", string(), true),
        ("system", system_schema(), true),
        ("stages", array(stage_schema()), true),
        ("created_at", timestamp(), true),
        ("expires_at", timestamp(), true),
        (
            "status",
            object(&[
                ("state", strings(["running", "completed", "cancelled", "failed"]), true),
                ("reason", string(), false),
            ]),
            true,
        ),
        ("progress", open_object("Per stage: what the import would create, link, update, skip, fail"), true),
    ];
    fields.extend(more.iter().cloned());
    object(&fields)
}

/// The reusable schemas, by name.
fn components_schemas() -> Vec<(&'static str, RefOr<Schema>)> {
    let timestamp = || string_described("An RFC 3339 time, UTC");
    vec![
        ("Error", object(&[("error", object(&[("kind", string(), true), ("message", string(), true)]), true)])),
        (
            "DeadLetter",
            object(&[
                ("id", string_described("`dl-` and 16 hex digits"), true),
                ("tenant", string(), true),
                ("system", system_schema(), true),
                (
                    "kind",
                    strings(["import_page", "export", "sync_record", "sync_poll", "sync_sweep", "sync_out"]),
                    true,
                ),
                ("what", string(), true),
                ("work", open_object("The work message as it was received (its JSON)"), true),
                ("receives", integer(), true),
                ("reason", string(), true),
                ("at", timestamp(), true),
                ("redrives", integer(), true),
                ("redriven_at", nullable(timestamp()), true),
                ("expires_at", timestamp(), true),
            ]),
        ),
        ("Choice", object(&[("id", string(), true), ("name", string(), true)])),
        (
            "Connection",
            object(&[
                ("tenant", string(), true),
                ("system", system_schema(), true),
                ("status", strings(["connected"]), true),
                ("account", open_object("Non-secret account details"), true),
                ("secret_name", string(), true),
                ("mappings", open_object("Saved mapping sections, per stage"), true),
                ("completed_stages", open_object("When each stage last completed an import"), true),
                ("settings", open_object("The connection's settings"), true),
                ("export_choices", open_object("Which external option export writes"), false),
                ("webhook", open_object("Where the system calls with changes"), false),
                ("polled", open_object("When each stage's last complete poll started"), false),
                ("swept", open_object("What each stage's last id reconciliation found"), false),
                ("relayed", timestamp(), false),
                ("field_map", open_object("Salesforce's saved field map"), false),
                ("selective_sync", reference("SelectiveSync"), false),
                ("created_at", timestamp(), true),
                ("updated_at", timestamp(), true),
                ("version", integer(), true),
            ]),
        ),
        (
            "Job",
            object(&[
                ("tenant", string(), true),
                ("id", string(), true),
                ("system", system_schema(), true),
                ("stages", array(stage_schema()), true),
                ("current", integer(), true),
                ("cursor", any_described("Where the current stage reads next"), true),
                (
                    "status",
                    object(&[
                        ("state", strings(["running", "completed", "cancelled", "failed"]), true),
                        ("reason", string(), false),
                    ]),
                    true,
                ),
                ("progress", open_object("Per stage: counts of created, linked, updated, skipped, failed"), true),
                ("created_at", timestamp(), true),
                ("updated_at", timestamp(), true),
                ("attempt", integer(), true),
                ("version", integer(), true),
                ("stalled", boolean(), false),
                ("dry_run", boolean(), false),
                ("eta", nullable(timestamp()), false),
                ("eta_reason", string(), false),
            ]),
        ),
        (
            "Health",
            object(&[
                ("system", system_schema(), true),
                ("at", timestamp(), true),
                (
                    "counts",
                    object(&[
                        ("last_24h", reference("OutcomeCounts"), true),
                        ("last_7d", reference("OutcomeCounts"), true),
                    ]),
                    true,
                ),
                (
                    "failures",
                    array(object(&[
                        ("kind", nullable(string()), true),
                        ("code", nullable(string()), true),
                        ("message", string(), true),
                        ("count", integer(), true),
                        ("first_at", timestamp(), true),
                        ("last_at", timestamp(), true),
                        ("records", array(open_object("A record the failure hit, with its log_id")), true),
                        ("records_total", integer(), true),
                    ])),
                    true,
                ),
                (
                    "last_success",
                    object(&[
                        (
                            "import",
                            nullable(object(&[("at", timestamp(), true), ("job", nullable(string()), true)])),
                            true,
                        ),
                        ("poll", nullable(timestamp()), true),
                        ("poll_stages", open_object("Per stage, the last complete poll's start"), true),
                        ("webhook", nullable(timestamp()), true),
                    ]),
                    true,
                ),
                (
                    "webhook",
                    object(&[
                        ("state", strings(["registered", "set_up_by_hand", "not_registered"]), true),
                        ("path", nullable(string()), true),
                        ("registration", nullable(string()), true),
                    ]),
                    true,
                ),
                (
                    "api_calls",
                    object(&[
                        ("used_24h", integer(), true),
                        ("budget_per_day", nullable(integer()), true),
                        ("remaining", nullable(integer()), true),
                        ("resumes_at", timestamp(), false),
                    ]),
                    true,
                ),
                (
                    "waiting",
                    array(open_object("Work waiting on a rate limit or the budget, and when it resumes")),
                    true,
                ),
            ]),
        ),
        (
            "OutcomeCounts",
            object(&[
                ("created", integer(), true),
                ("linked", integer(), true),
                ("updated", integer(), true),
                ("skipped", integer(), true),
                ("conflict", integer(), true),
                ("failed", integer(), true),
                ("deleted", integer(), true),
            ]),
        ),
        (
            "Export",
            object(&[
                ("id", string(), true),
                ("tenant", string(), true),
                ("system", system_schema(), true),
                ("kind", kind_schema(), true),
                ("record", string(), true),
                ("include", array(any_schema()), true),
                ("status", any_described("The export's state"), true),
                ("results", array(any_schema()), true),
                ("message", string(), false),
                ("created_at", timestamp(), true),
                ("updated_at", timestamp(), true),
                ("stalled", boolean(), true),
            ]),
        ),
        ("Settings", open_object("The connection's settings, and where the system calls once inbound sync is on")),
        (
            "FieldMapView",
            object(&[
                ("map", nullable(open_object("The saved field map")), true),
                ("target", strings(["lead", "account"]), true),
                ("choices", open_object("Per object of the target, the fields Tandem may write"), true),
            ]),
        ),
        (
            "Snapshot",
            object(&[
                ("id", string(), true),
                ("at", timestamp(), true),
                ("reason", strings(["on_demand", "before_first_import", "before_auto_sync", "before_restore"]), true),
                ("note", string(), false),
                ("system", system_schema(), false),
                ("of", string(), false),
                ("records", integer(), true),
                ("links", integer(), true),
                ("bytes", integer(), true),
                ("restored", array(timestamp()), false),
            ]),
        ),
        (
            "Restored",
            object(&[
                ("snapshot", string(), true),
                ("undo", string(), true),
                ("records_restored", integer(), true),
                ("records_removed", integer(), true),
                ("records_unchanged", integer(), true),
                ("links_restored", integer(), true),
                ("links_removed", integer(), true),
            ]),
        ),
        ("PollStarted", object(&[("stages", array(stage_schema()), true)])),
        (
            "SelectiveSync",
            object(&[
                ("rules", array(open_object("One rule")), true),
                ("since", timestamp(), true),
                ("queued", integer(), false),
            ]),
        ),
        (
            "Record",
            object(&[
                ("object", kind_schema(), true),
                (
                    "meta",
                    object(&[
                        ("id", string(), true),
                        ("version", integer(), true),
                        ("links", open_object("Per system, the external record it is linked to"), true),
                        ("created_at", timestamp(), true),
                        ("updated_at", timestamp(), true),
                    ]),
                    true,
                ),
            ]),
        ),
        ("Preview", preview_summary(&[])),
        (
            "PreviewReport",
            preview_summary(&[(
                "records",
                array(object(&[
                    ("object", kind_schema(), true),
                    ("external_id", nullable(string()), true),
                    ("outcome", strings(["created", "linked", "updated", "skipped", "failed"]), true),
                    ("detail", string_described("The skip reason or the failure"), false),
                    ("crm_id", string_described("The CRM record it would link to or update"), false),
                    ("matched", string_described("Why it would link"), false),
                    ("fields", array(string()), false),
                ])),
                true,
            )]),
        ),
        (
            "LogEntry",
            object(&[
                ("id", string(), true),
                ("tenant", string(), true),
                ("at", timestamp(), true),
                ("system", system_schema(), true),
                ("direction", strings(["import", "export", "sync_in", "sync_out", "webhook"]), true),
                ("object", kind_schema(), true),
                ("crm_id", nullable(string()), false),
                ("external_id", nullable(string()), false),
                ("job_id", nullable(string()), false),
            ]),
        ),
    ]
}

fn path_param(name: &str) -> RefOr<Schema> {
    match name {
        "system" => system_schema(),
        "stage" => stage_schema(),
        "kind" => kind_schema(),
        "list" => strings(OptionList::ALL.iter().map(|l| l.as_str())),
        _ => string(),
    }
}

fn query_param(key: &str) -> RefOr<Schema> {
    match key {
        "limit" => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(1000))
            .description(Some("At most this many (1-1000)"))
            .into(),
        "system" => system_schema(),
        "object" => kind_schema(),
        "target" => strings(["lead", "account"]),
        "since" | "until" => string_described("An RFC 3339 time such as 2026-01-31T09:00:00Z"),
        "token" => string_described("Where to go on from: the previous page's `next`"),
        _ => string(),
    }
}

fn system_schema() -> RefOr<Schema> {
    strings(System::ALL.iter().map(|s| s.as_str()))
}

fn stage_schema() -> RefOr<Schema> {
    strings(Stage::ALL.iter().map(|s| s.as_str()))
}

fn kind_schema() -> RefOr<Schema> {
    strings(RecordKind::ALL.iter().map(|k| k.as_str()))
}

fn reference(name: &str) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

fn string() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn string_described(what: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).description(Some(what)).into()
}

fn integer() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).into()
}

fn boolean() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Boolean).into()
}

fn strings<'a>(values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values)).into()
}

fn any_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(SchemaType::AnyValue).into()
}

fn any_described(what: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(SchemaType::AnyValue).description(Some(what)).into()
}

fn array(items: RefOr<Schema>) -> RefOr<Schema> {
    ArrayBuilder::new().items(items).into()
}

fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    OneOfBuilder::new().item(schema).item(ObjectBuilder::new().schema_type(Type::Null)).into()
}

/// A JSON object with any members.
fn open_object(what: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).description(Some(what)).into()
}

/// An object with these (name, schema, required) properties, and possibly others.
fn object(props: &[(&str, RefOr<Schema>, bool)]) -> RefOr<Schema> {
    object_builder(props).into()
}

/// An object with these properties and no others (the API refuses unknown fields).
fn closed_object(props: &[(&str, RefOr<Schema>, bool)]) -> RefOr<Schema> {
    object_builder(props).additional_properties(Some(AdditionalProperties::FreeForm(false))).into()
}

fn object_builder(props: &[(&str, RefOr<Schema>, bool)]) -> ObjectBuilder {
    let mut o = ObjectBuilder::new().schema_type(Type::Object);
    for (name, schema, required) in props {
        o = o.property(*name, schema.clone());
        if *required {
            o = o.required(*name);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in
                item.as_object().expect("a path item").iter().filter(|(k, _)| METHODS.contains(&k.as_str()))
            {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        out
    }

    #[test]
    fn the_document_has_every_route_with_its_method_and_nothing_else() {
        let doc = document_json();
        let listed: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        assert_eq!(operations(&doc), listed);
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc = document_json();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
    }

    #[test]
    fn every_path_parameter_and_query_parameter_is_declared() {
        let doc = document_json();
        for (method, path) in ROUTES {
            let op = &doc["paths"][path][method.to_ascii_lowercase()];
            let declared: BTreeSet<(String, String)> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| (p["in"].as_str().unwrap_or("").into(), p["name"].as_str().unwrap_or("").into()))
                        .collect()
                })
                .unwrap_or_default();
            for name in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
                assert!(declared.contains(&("path".into(), name.into())), "{method} {path}: {name}");
            }
            let route = route_of(path).expect("a listed route resolves");
            for key in route.query_keys() {
                assert!(declared.contains(&("query".into(), key.to_string())), "{method} {path}: {key}");
            }
        }
    }

    #[test]
    fn every_route_has_its_bodies_described() {
        let undescribed: Vec<_> = ROUTES.iter().filter(|(m, p)| bodies(m, p).1.2 == UNDESCRIBED).collect();
        assert!(undescribed.is_empty(), "describe these routes' bodies in openapi.rs: {undescribed:?}");
    }

    #[test]
    fn every_operation_answers_json_and_describes_its_errors() {
        let doc = document_json();
        for (method, path) in ROUTES {
            let responses = &doc["paths"][path][method.to_ascii_lowercase()]["responses"];
            let codes: Vec<&String> = responses.as_object().expect("responses").keys().collect();
            assert!(codes.iter().any(|c| c.starts_with('2')), "{method} {path}: {codes:?}");
            assert!(codes.iter().any(|c| c.starts_with('4')), "{method} {path}: {codes:?}");
        }
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let text = doc.to_string();
        for name in schemas.keys() {
            assert!(text.contains(&format!("#/components/schemas/{name}")), "{name} is never used");
        }
    }
}
