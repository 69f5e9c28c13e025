//! The aidant's own pages: the usagers they follow (the organisation's running mandates they
//! may use) with a way to end a mandate at the usager's request, their own recent actions,
//! and the organisation's journal with filters (period, démarche, aidant) and counts.

use std::collections::{BTreeMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use mandate_store::{Actor, Demarche, JournalAction, JournalFilter, StoreError};
use serde::Deserialize;

use super::french::{born, french_date, paris_day};
use super::history::{self, HistoryRow};
use super::{DemarcheView, EndForm, EndedQuery};
use crate::journal;
use crate::provider::error::FrontError;
use crate::provider::page::{html, ErrorPage};
use crate::provider::respond::see_other;
use crate::provider::session::{self, Required};
use crate::provider::{tokens, AppData};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/espace-aidant", web::get().to(space))
        .route(
            "/mandats/{id}/fin",
            web::post().to(super::ending(false, end_with)),
        )
        .route(
            "/mandats/{id}/fin-demarche",
            web::post().to(super::ending(true, end_with)),
        )
        .route("/structure/journal", web::get().to(organisation_journal));
}

/// The aidant's own actions shown on their page (newest first).
const OWN_ACTIONS: i64 = 50;
/// Rows shown on the organisation's journal page; the counts cover the whole period.
const JOURNAL_ROWS: usize = 500;
/// The longest period the page reads at once (the CLI exports any).
const MAX_PERIOD_DAYS: i64 = 366;

struct FollowedView {
    mandate_id: String,
    name: String,
    born: String,
    demarches: Vec<DemarcheView>,
    expires: String,
}

#[derive(Template)]
#[template(path = "aidant_space.html")]
struct SpacePage {
    /// The aidant's session CSRF token, for « Se déconnecter ».
    logout_csrf: String,
    aidant_name: String,
    organisation_name: String,
    csrf: String,
    followed: Vec<FollowedView>,
    actions: Vec<HistoryRow>,
    notice: Option<&'static str>,
}

async fn space(
    req: HttpRequest,
    app: AppData,
    q: web::Query<EndedQuery>,
) -> Result<HttpResponse, FrontError> {
    let s = match session::require(&req, &app, "/espace-aidant").await? {
        Required::Active { session, .. } => session,
        Required::LoginFirst(login) => return Ok(login),
    };
    let (org, aidant, now) = (s.organisation_id.clone(), s.aidant_id.clone(), app.now());
    let (followed, lines) = app
        .read(move |store| {
            let followed = store.usable_mandates(&org, &aidant, &Demarche::ALL, now)?;
            let filter = JournalFilter {
                organisation_id: Some(org),
                aidant_id: Some(aidant),
                limit: Some(OWN_ACTIONS),
                ..Default::default()
            };
            Ok::<_, StoreError>((followed, journal::lines(store, &filter, None)?))
        })
        .await?;
    let page = SpacePage {
        logout_csrf: s.csrf.clone(),
        aidant_name: s.aidant_name.clone(),
        organisation_name: s.organisation_name.clone(),
        csrf: s.csrf.clone(),
        followed: followed
            .into_iter()
            .map(|m| FollowedView {
                name: m.identity.full_name(),
                born: born(&m.identity),
                demarches: m.demarches.iter().map(DemarcheView::from).collect(),
                expires: french_date(m.expires_at),
                mandate_id: m.mandate_id,
            })
            .collect(),
        actions: history::rows(&app, &lines),
        notice: q.notice(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

/// An aidant ends a mandate of their organisation, at the usager's request.
/// Ends the mandate, or (`one`) the démarche the form names.
async fn end_with(
    one: bool,
    req: HttpRequest,
    app: AppData,
    id: web::Path<String>,
    form: web::Form<EndForm>,
) -> Result<HttpResponse, FrontError> {
    let s = match session::require(&req, &app, "/espace-aidant").await? {
        Required::Active { session, .. } => session,
        Required::LoginFirst(login) => return Ok(login),
    };
    if s.csrf.is_empty() || !tokens::same(&form.csrf, &s.csrf) {
        return Err(ErrorPage::expired().into());
    }
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other("/espace-aidant".to_string()));
    }
    let (id, org, aidant, now) = (
        id.into_inner(),
        s.organisation_id.clone(),
        s.aidant_id.clone(),
        app.now(),
    );
    let result = app
        .write(move |store| {
            // Only a mandate of the organisation the aidant acts for now, and, where the
            // organisation binds mandates to their creator, only one they created.
            let bound = store
                .organisation(&org)?
                .is_some_and(|o| o.mandates_bound_to_creator);
            match store.mandate(&id)? {
                Some(m) if m.organisation_id == org && (!bound || m.created_by == aidant) => {}
                _ => return Err(StoreError::NotAllowed("not this aidant's to end".into())),
            }
            let reason = "ended by an aidant at the usager's request";
            form.apply(one, store, &id, reason, Actor::Aidant(aidant), now)
        })
        .await;
    let back = super::ended(result, "Ce mandat n'a pas été donné à votre structure.")?;
    tracing::info!("mandate ended, or one of its démarches, by an aidant");
    Ok(see_other(format!("/espace-aidant?{back}")))
}

#[derive(Deserialize)]
struct JournalQuery {
    du: Option<String>,
    au: Option<String>,
    demarche: Option<String>,
    aidant: Option<String>,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct Count {
    label: String,
    count: usize,
}

#[derive(Template)]
#[template(path = "organisation_journal.html")]
struct JournalPage {
    /// The aidant's session CSRF token, for « Se déconnecter ».
    logout_csrf: String,
    organisation_name: String,
    du: String,
    au: String,
    demarches: Vec<Choice>,
    aidants: Vec<Choice>,
    usagers: usize,
    demarches_done: usize,
    by_demarche: Vec<Count>,
    by_aidant: Vec<Count>,
    rows: Vec<HistoryRow>,
    total: usize,
    /// The organisation binds mandates to their creator: the aidant's own actions only.
    own_only: bool,
    error: Option<&'static str>,
}

/// A day of the filter form (YYYY-MM-DD) as the first (or, `end`, last) second of that day,
/// Paris time.
fn day_bound(day: &str, end: bool) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let t = if end {
        d.and_hms_opt(23, 59, 59)?
    } else {
        d.and_hms_opt(0, 0, 0)?
    };
    t.and_local_timezone(chrono_tz::Europe::Paris)
        .earliest()
        .map(|t| t.timestamp())
}

/// The organisation's journal: every action of its aidants over a period (the last 30 days
/// by default, a year at most), narrowed by démarche and aidant, with counts. Any aidant of
/// the organisation may read it, as they may act for any of its usagers; where the
/// organisation binds mandates to their creator, an aidant sees their own actions only.
async fn organisation_journal(
    req: HttpRequest,
    app: AppData,
    q: web::Query<JournalQuery>,
) -> Result<HttpResponse, FrontError> {
    // Back to the same filters after a login.
    let then = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| p.len() <= 512)
        .unwrap_or("/structure/journal")
        .to_string();
    let s = match session::require(&req, &app, &then).await? {
        Required::Active { session, .. } => session,
        Required::LoginFirst(login) => return Ok(login),
    };
    let now = app.now();
    let du =
        q.du.clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| paris_day(now - 30 * 86_400).format("%Y-%m-%d").to_string());
    let au =
        q.au.clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| paris_day(now).format("%Y-%m-%d").to_string());
    let demarche = q
        .demarche
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<Demarche>());
    let aidant = q.aidant.clone().filter(|a| !a.is_empty());
    let (since, until) = (day_bound(&du, false), day_bound(&au, true));
    let error = match (since, until, &demarche) {
        (None, _, _) | (_, None, _) => Some("Les dates doivent être au format AAAA-MM-JJ."),
        (Some(a), Some(b), _) if a > b => Some("La date de début est après la date de fin."),
        (Some(a), Some(b), _) if b - a > MAX_PERIOD_DAYS * 86_400 => {
            Some("Choisissez une période d'un an au plus.")
        }
        (_, _, Some(Err(_))) => Some("Démarche inconnue."),
        _ => None,
    };
    let demarche = demarche.and_then(Result::ok);
    let org = s.organisation_id.clone();
    let mut filter = JournalFilter {
        organisation_id: Some(org.clone()),
        aidant_id: aidant.clone(),
        since,
        until,
        ..Default::default()
    };
    let failed = error.is_some();
    let viewer = s.aidant_id.clone();
    let (members, lines, own_only) = app
        .read(move |store| {
            let own_only = store
                .organisation(&org)?
                .is_some_and(|o| o.mandates_bound_to_creator);
            let mut members = store.aidants_of(&org)?;
            if own_only {
                members.retain(|m| m.id == viewer);
                filter.aidant_id = Some(viewer);
            }
            let lines = if failed {
                Vec::new()
            } else {
                journal::lines(store, &filter, demarche)?
            };
            Ok::<_, StoreError>((members, lines, own_only))
        })
        .await?;
    let error = error.or_else(|| {
        aidant
            .as_ref()
            .filter(|id| !members.iter().any(|m| &m.id == *id))
            .map(|_| "Cet aidant n'est pas membre de votre structure.")
    });
    let lines = if error.is_some() { Vec::new() } else { lines };

    let used: Vec<_> = lines
        .iter()
        .filter(|l| l.action == JournalAction::MandateUsed.as_str())
        .collect();
    // People and aidants are counted by id: two people may share a name.
    let usagers: HashSet<_> = used.iter().filter_map(|l| l.usager_id.as_ref()).collect();
    let mut by_demarche: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_aidant: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for l in &used {
        if let Some(d) = l.demarche {
            *by_demarche.entry(d.title_fr()).or_default() += 1;
        }
        let name = l.aidant.as_deref().unwrap_or("—");
        *by_aidant
            .entry((name, l.aidant_id.as_deref().unwrap_or_default()))
            .or_default() += 1;
    }
    let by_demarche = by_demarche
        .into_iter()
        .map(|(label, count)| Count {
            label: label.to_string(),
            count,
        })
        .collect();
    let by_aidant = by_aidant
        .into_iter()
        .map(|((name, _), count)| Count {
            label: name.to_string(),
            count,
        })
        .collect();
    let page = JournalPage {
        logout_csrf: s.csrf.clone(),
        organisation_name: s.organisation_name.clone(),
        demarches: Demarche::ALL
            .iter()
            .map(|d| Choice {
                value: d.as_str().to_string(),
                label: d.title_fr().to_string(),
                selected: demarche == Some(*d),
            })
            .collect(),
        aidants: members
            .into_iter()
            .map(|a| Choice {
                selected: aidant.as_deref() == Some(a.id.as_str()),
                label: a.full_name(),
                value: a.id,
            })
            .collect(),
        usagers: usagers.len(),
        demarches_done: used.len(),
        by_demarche,
        by_aidant,
        total: lines.len(),
        rows: history::rows(&app, &lines[..lines.len().min(JOURNAL_ROWS)]),
        du,
        au,
        own_only,
        error,
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(html(status, page.render()))
}
