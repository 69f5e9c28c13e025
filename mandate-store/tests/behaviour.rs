//! One behaviour suite for the mandate store, run against SQLite and PostgreSQL: a backend
//! is done when every behaviour here holds on it.

#[macro_use]
mod common;

use std::sync::Arc;

use common::*;
use mandate_store::{
    verify_chain, Actor, ChainBreak, ChainBreakKind, DataKey, Demarche, GiveMandate, JournalAction,
    JournalFilter, Level, NewJournalEntry, Purged, Refusal, Sealer, StoreError, Use, UseError,
    VerifyError,
};

behaviours! {
    migrations_run_twice_are_idempotent,
    organisation_upsert_is_keyed_by_siret,
    aidant_upsert_replaces_memberships,
    aidant_upsert_with_unknown_siret_changes_nothing,
    aidant_login_lists_only_active_organisations_by_name,
    disabled_aidant_login_is_reported_not_hidden,
    same_franceconnect_subject_is_one_usager,
    identity_is_not_stored_in_clear,
    usable_mandates_only_lists_allowed_demarches,
    usable_mandates_are_active_ones_of_the_organisation_by_name,
    record_use_appends_one_journal_entry,
    check_grant_returns_the_grant_without_writing,
    unknown_mandate_is_refused,
    revoked_mandate_is_refused,
    expired_mandate_is_refused,
    uncovered_demarche_is_refused,
    aidant_of_other_organisation_is_refused,
    disabled_aidant_is_refused,
    inactive_organisation_is_refused,
    refused_use_writes_no_journal_entry,
    revocation_is_journaled_once,
    only_the_mandates_parties_may_revoke_it,
    create_mandate_is_idempotent_by_id,
    create_mandate_rejects_unknown_references_and_bad_input,
    journal_chain_verifies_and_detects_edit,
    journal_filter_selects_newest_first,
    concurrent_record_use_keeps_the_chain_gap_free,
    disabling_an_aidant_keeps_memberships_and_refuses_use,
    disabling_an_organisation_refuses_use,
    rotating_the_data_key_reseals_every_identity,
    mandates_bound_to_creator_serve_only_their_creator,
    giving_a_mandate_twice_from_two_organisations_makes_one_usager,
    a_new_mandate_replaces_the_previous_one_of_the_same_organisation,
    only_an_active_member_records_a_mandate,
    journal_verify_passes_an_intact_journal,
    journal_verify_locates_an_update,
    journal_verify_locates_a_delete,
    journal_verify_locates_a_swap,
    journal_verify_locates_a_deleted_first_entry,
    retention_purge_deletes_the_old_and_keeps_the_journal_verifiable,
    retention_purge_with_nothing_old_changes_nothing,
    aidants_of_an_organisation_are_its_members,
    a_use_may_require_a_consent_level,
    an_aidant_may_act_only_as_an_active_member_of_an_active_organisation,
    a_refused_mandate_is_journaled_and_nothing_else,
    ending_one_demarche_keeps_the_rest_of_the_mandate,
}

fn use_of(w: &World, demarche: Demarche) -> Use {
    Use {
        mandate_id: w.mandate.id.clone(),
        aidant_id: w.aidant.id.clone(),
        organisation_id: w.org.id.clone(),
        demarche,
        client_id: "impots".into(),
        consent_at_least: None,
    }
}

fn refusal(result: Result<mandate_store::Grant, UseError>) -> Refusal {
    match result {
        Err(UseError::Refused(r)) => r,
        Err(UseError::Store(e)) => panic!("expected a refusal, got a store error: {e}"),
        Ok(_) => panic!("expected a refusal, got a grant"),
    }
}

fn all_entries(db: &TestDb) -> Vec<mandate_store::JournalEntry> {
    db.store()
        .journal_entries(&JournalFilter::default())
        .unwrap()
}

fn migrations_run_twice_are_idempotent(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    store.migrate().unwrap();
    store.migrate().unwrap();
    assert_eq!(store.mandate(&w.mandate.id).unwrap(), Some(w.mandate));
}

fn organisation_upsert_is_keyed_by_siret(db: &TestDb) {
    let store = db.store();
    let first = store
        .upsert_organisation(SIRET, "Acacias", true, NOW)
        .unwrap();
    let second = store
        .upsert_organisation(SIRET, "Centre social des Acacias", false, NOW + 1)
        .unwrap();
    assert_eq!(first.id, second.id);
    let found = store.organisation_by_siret(SIRET).unwrap().unwrap();
    assert_eq!(found, second);
    assert_eq!(found.name, "Centre social des Acacias");
    assert!(!found.active);
    assert_eq!(store.organisation(&first.id).unwrap(), Some(found));
    assert_eq!(store.organisation_by_siret(OTHER_SIRET).unwrap(), None);
    assert!(matches!(
        store.upsert_organisation("", "x", true, NOW),
        Err(StoreError::Invalid(_))
    ));
}

fn aidant_upsert_replaces_memberships(db: &TestDb) {
    let store = db.store();
    organisation(store, SIRET, "Acacias");
    organisation(store, OTHER_SIRET, "Bouleaux");
    let a = aidant(store, "aidant-1", &[SIRET, OTHER_SIRET]);
    let login = store
        .find_aidant_login(ISSUER, "aidant-1")
        .unwrap()
        .unwrap();
    assert_eq!(login.organisations.len(), 2);

    let mut changed = new_aidant("aidant-1", true, &[OTHER_SIRET]);
    changed.email = "new@structure.test".into();
    let b = store.upsert_aidant(&changed, NOW + 1).unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(b.email, "new@structure.test");
    let login = store
        .find_aidant_login(ISSUER, "aidant-1")
        .unwrap()
        .unwrap();
    assert_eq!(login.aidant, b);
    let sirets: Vec<_> = login
        .organisations
        .iter()
        .map(|o| o.siret.as_str())
        .collect();
    assert_eq!(sirets, [OTHER_SIRET]);
    assert_eq!(
        store.aidant_by_subject(ISSUER, "aidant-1").unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.aidant(&b.id).unwrap(), Some(b));
    assert_eq!(
        store
            .aidant_by_subject("https://other", "aidant-1")
            .unwrap(),
        None
    );
}

fn aidant_upsert_with_unknown_siret_changes_nothing(db: &TestDb) {
    let store = db.store();
    organisation(store, SIRET, "Acacias");
    let a = aidant(store, "aidant-1", &[SIRET]);
    let mut changed = new_aidant("aidant-1", false, &[SIRET, "00000000000000"]);
    changed.family_name = "Changed".into();
    let err = store.upsert_aidant(&changed, NOW + 1).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "organisation",
                ..
            }
        ),
        "{err}"
    );
    let login = store
        .find_aidant_login(ISSUER, "aidant-1")
        .unwrap()
        .unwrap();
    assert_eq!(login.aidant, a);
    assert_eq!(login.organisations.len(), 1);
}

fn aidant_login_lists_only_active_organisations_by_name(db: &TestDb) {
    let store = db.store();
    organisation(store, "11111111111111", "Zèbre CCAS");
    organisation(store, "22222222222222", "Acacias");
    store
        .upsert_organisation("33333333333333", "Mairie fermée", false, NOW)
        .unwrap();
    aidant(
        store,
        "aidant-1",
        &["11111111111111", "22222222222222", "33333333333333"],
    );
    let login = store
        .find_aidant_login(ISSUER, "aidant-1")
        .unwrap()
        .unwrap();
    let names: Vec<_> = login
        .organisations
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(names, ["Acacias", "Zèbre CCAS"]);
    assert!(store.find_aidant_login(ISSUER, "nobody").unwrap().is_none());
}

fn disabled_aidant_login_is_reported_not_hidden(db: &TestDb) {
    let store = db.store();
    organisation(store, SIRET, "Acacias");
    store
        .upsert_aidant(&new_aidant("aidant-off", false, &[SIRET]), NOW)
        .unwrap();
    let login = store
        .find_aidant_login(ISSUER, "aidant-off")
        .unwrap()
        .unwrap();
    assert!(!login.aidant.active);
    assert_eq!(login.organisations.len(), 1);
}

fn same_franceconnect_subject_is_one_usager(db: &TestDb) {
    let store = db.store();
    let first = store
        .upsert_usager(None, "fc-sub-1", &identity("Angela", "DUBOIS"), NOW)
        .unwrap();
    let again = store
        .upsert_usager(
            Some("ignored-id"),
            "fc-sub-1",
            &identity("Angela Claire", "DUBOIS"),
            NOW + 10,
        )
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(again.created_at, NOW);
    let stored = store.usager(&first.id).unwrap().unwrap();
    assert_eq!(stored.identity.given_name, "Angela Claire");
    assert_eq!(
        store.usager_by_franceconnect_sub("fc-sub-1").unwrap(),
        Some(stored)
    );

    let other = store
        .upsert_usager(
            Some("usager-import-7"),
            "fc-sub-2",
            &identity("Michel", "DUPONT"),
            NOW,
        )
        .unwrap();
    assert_eq!(other.id, "usager-import-7");
    assert_ne!(other.id, first.id);
    assert!(store
        .usager_by_franceconnect_sub("fc-sub-3")
        .unwrap()
        .is_none());
    // An imported id that is already someone else's is refused.
    assert!(matches!(
        store.upsert_usager(
            Some("usager-import-7"),
            "fc-sub-4",
            &identity("X", "Y"),
            NOW
        ),
        Err(StoreError::Invalid(_))
    ));
}

fn identity_is_not_stored_in_clear(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    store
        .record_use(&use_of(&w, Demarche::Argent), NOW)
        .unwrap();
    let dump = db.raw_dump();
    // The dump is real: ids are there in clear.
    assert!(dump.contains(&w.usager.id));
    for secret in [
        "Angela Claire Louise",
        "DUBOIS",
        "1962-08-24",
        "usager@example.fr",
        "fc-sub-angela",
    ] {
        assert!(!dump.contains(secret), "{secret} is stored in clear");
    }
}

fn usable_mandates_only_lists_allowed_demarches(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let usable = store
        .usable_mandates(
            &w.org.id,
            &w.aidant.id,
            &[Demarche::Argent, Demarche::Papiers],
            NOW,
        )
        .unwrap();
    assert_eq!(usable.len(), 1);
    assert_eq!(usable[0].mandate_id, w.mandate.id);
    assert_eq!(usable[0].usager_id, w.usager.id);
    assert_eq!(usable[0].identity, w.usager.identity);
    assert_eq!(usable[0].demarches, [Demarche::Argent]);
    assert_eq!(usable[0].expires_at, w.mandate.expires_at);

    let both = store
        .usable_mandates(&w.org.id, &w.aidant.id, &Demarche::ALL, NOW)
        .unwrap();
    assert_eq!(both[0].demarches, [Demarche::Social, Demarche::Argent]);
    assert!(store
        .usable_mandates(&w.org.id, &w.aidant.id, &[Demarche::Papiers], NOW)
        .unwrap()
        .is_empty());
    assert!(store
        .usable_mandates(&w.org.id, &w.aidant.id, &[], NOW)
        .unwrap()
        .is_empty());
}

fn usable_mandates_are_active_ones_of_the_organisation_by_name(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let other_org = organisation(store, OTHER_SIRET, "Bouleaux");
    let other_aidant = aidant(store, "aidant-2", &[OTHER_SIRET]);
    let all = [Demarche::Argent];

    let martin = usager(store, "fc-martin", "Zoé", "MARTIN");
    mandate(store, &martin, &w.org, &w.aidant, &all, 30);
    let abel = usager(store, "fc-abel", "Jean", "ABEL");
    mandate(store, &abel, &w.org, &w.aidant, &all, 30);
    let abel_b = usager(store, "fc-abel-b", "Anne", "Abel");
    mandate(store, &abel_b, &w.org, &w.aidant, &all, 30);
    // Not listed: revoked, expired, another organisation's.
    let revoked_for = usager(store, "fc-r", "Rémi", "REVOQUE");
    let revoked = mandate(store, &revoked_for, &w.org, &w.aidant, &all, 30);
    store
        .revoke_mandate(&revoked.id, "fin", Actor::Ops, NOW + 1)
        .unwrap();
    let expired_for = usager(store, "fc-e", "Émile", "EXPIRE");
    mandate(store, &expired_for, &w.org, &w.aidant, &all, 1);
    let elsewhere = usager(store, "fc-x", "Xavier", "AILLEURS");
    mandate(store, &elsewhere, &other_org, &other_aidant, &all, 30);

    let usable = store
        .usable_mandates(&w.org.id, &w.aidant.id, &all, NOW + DAY)
        .unwrap();
    let names: Vec<_> = usable
        .iter()
        .map(|u| format!("{} {}", u.identity.family_name, u.identity.given_name))
        .collect();
    assert_eq!(
        names,
        [
            "Abel Anne",
            "ABEL Jean",
            "DUBOIS Angela Claire Louise",
            "MARTIN Zoé"
        ]
    );

    store
        .upsert_organisation(SIRET, "Centre social des Acacias", false, NOW)
        .unwrap();
    assert!(store
        .usable_mandates(&w.org.id, &w.aidant.id, &all, NOW)
        .unwrap()
        .is_empty());
}

fn record_use_appends_one_journal_entry(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let before = all_entries(db);
    let grant = store
        .record_use(&use_of(&w, Demarche::Social), NOW + 60)
        .unwrap();
    assert_eq!(grant.mandate_id, w.mandate.id);
    assert_eq!(grant.demarche, Demarche::Social);
    assert_eq!(grant.mandate_expires_at, w.mandate.expires_at);
    assert_eq!(grant.usager_id, w.usager.id);
    assert_eq!(grant.identity, w.usager.identity);
    assert_eq!(grant.aidant, w.aidant);
    assert_eq!(grant.organisation, w.org);

    let after = all_entries(db);
    assert_eq!(after.len(), before.len() + 1);
    let entry = &after[0];
    assert_eq!(entry.seq, before[0].seq + 1);
    assert_eq!(entry.at, NOW + 60);
    assert_eq!(entry.action, JournalAction::MandateUsed.as_str());
    assert_eq!(entry.aidant_id.as_deref(), Some(w.aidant.id.as_str()));
    assert_eq!(entry.organisation_id.as_deref(), Some(w.org.id.as_str()));
    assert_eq!(entry.usager_id.as_deref(), Some(w.usager.id.as_str()));
    assert_eq!(entry.mandate_id.as_deref(), Some(w.mandate.id.as_str()));
    assert_eq!(entry.client_id.as_deref(), Some("impots"));
    assert_eq!(entry.demarche, Some(Demarche::Social));
    assert_eq!(entry.prev_hash, before[0].hash);
}

fn check_grant_returns_the_grant_without_writing(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let recorded = store
        .record_use(&use_of(&w, Demarche::Argent), NOW)
        .unwrap();
    let count = all_entries(db).len();
    let checked = store
        .check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW + 30,
        )
        .unwrap();
    assert_eq!(checked, recorded);
    assert_eq!(all_entries(db).len(), count);
}

fn unknown_mandate_is_refused(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let r = refusal(store.check_grant(
        "no-such-mandate",
        &w.aidant.id,
        &w.org.id,
        Demarche::Argent,
        NOW,
    ));
    assert_eq!(r, Refusal::UnknownMandate);
    assert_eq!(r.code(), "unknown_mandate");
}

fn revoked_mandate_is_refused(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    store
        .revoke_mandate(&w.mandate.id, "demande de l'usager", Actor::Ops, NOW + 5)
        .unwrap();
    assert_eq!(
        refusal(store.record_use(&use_of(&w, Demarche::Argent), NOW + 6)),
        Refusal::Revoked
    );
    assert_eq!(
        refusal(store.check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW + 6
        )),
        Refusal::Revoked
    );
}

fn expired_mandate_is_refused(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let end = w.mandate.expires_at;
    store
        .check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            end - 1,
        )
        .unwrap();
    let r = refusal(store.check_grant(
        &w.mandate.id,
        &w.aidant.id,
        &w.org.id,
        Demarche::Argent,
        end,
    ));
    assert_eq!(r, Refusal::Expired);
    assert_eq!(
        refusal(store.record_use(&use_of(&w, Demarche::Argent), end + DAY)),
        Refusal::Expired
    );
}

fn uncovered_demarche_is_refused(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    assert_eq!(
        refusal(store.record_use(&use_of(&w, Demarche::Logement), NOW)),
        Refusal::DemarcheNotCovered
    );
}

fn aidant_of_other_organisation_is_refused(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let other_org = organisation(store, OTHER_SIRET, "Bouleaux");
    let outsider = aidant(store, "aidant-2", &[OTHER_SIRET]);
    // Acting for their own organisation: the mandate is not theirs.
    assert_eq!(
        refusal(store.check_grant(
            &w.mandate.id,
            &outsider.id,
            &other_org.id,
            Demarche::Argent,
            NOW
        )),
        Refusal::OtherOrganisation
    );
    // Claiming the mandate's organisation: they are not a member.
    assert_eq!(
        refusal(store.check_grant(
            &w.mandate.id,
            &outsider.id,
            &w.org.id,
            Demarche::Argent,
            NOW
        )),
        Refusal::AidantNotMember
    );
    assert_eq!(
        refusal(store.check_grant(
            &w.mandate.id,
            "no-such-aidant",
            &w.org.id,
            Demarche::Argent,
            NOW
        )),
        Refusal::AidantNotMember
    );
    // Membership removed: refused from the next check on.
    store
        .upsert_aidant(&new_aidant("aidant-1", true, &[OTHER_SIRET]), NOW)
        .unwrap();
    assert_eq!(
        refusal(store.record_use(&use_of(&w, Demarche::Argent), NOW)),
        Refusal::AidantNotMember
    );
}

fn disabled_aidant_is_refused(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    store
        .upsert_aidant(&new_aidant("aidant-1", false, &[SIRET]), NOW + 1)
        .unwrap();
    assert_eq!(
        refusal(store.record_use(&use_of(&w, Demarche::Argent), NOW + 2)),
        Refusal::AidantInactive
    );
}

fn inactive_organisation_is_refused(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    store
        .upsert_organisation(SIRET, "Centre social des Acacias", false, NOW + 1)
        .unwrap();
    assert_eq!(
        refusal(store.check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW + 2
        )),
        Refusal::OrganisationInactive
    );
}

fn refused_use_writes_no_journal_entry(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let before = all_entries(db);
    refusal(store.record_use(&use_of(&w, Demarche::Loisirs), NOW));
    refusal(store.record_use(&use_of(&w, Demarche::Argent), w.mandate.expires_at));
    assert_eq!(all_entries(db), before);
}

fn revocation_is_journaled_once(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let revoked = store
        .revoke_mandate(
            &w.mandate.id,
            "déménagement",
            Actor::Aidant(w.aidant.id.clone()),
            NOW + 9,
        )
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 9));
    assert_eq!(revoked.revoked_reason.as_deref(), Some("déménagement"));
    assert!(!revoked.is_active(NOW + 9));
    assert!(!revoked.covers(Demarche::Argent, NOW));

    let again = store
        .revoke_mandate(&w.mandate.id, "autre raison", Actor::Ops, NOW + 20)
        .unwrap();
    assert_eq!(again, revoked);
    assert_eq!(store.mandate(&w.mandate.id).unwrap(), Some(revoked));

    let entries = store
        .journal_entries(&JournalFilter {
            mandate_id: Some(w.mandate.id.clone()),
            ..JournalFilter::default()
        })
        .unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["mandate_revoked", "mandate_created"]);
    assert_eq!(entries[0].aidant_id.as_deref(), Some(w.aidant.id.as_str()));
    assert_eq!(entries[0].at, NOW + 9);
    // The free-text reason stays out of the journal.
    assert!(!entries[0]
        .detail
        .clone()
        .unwrap_or_default()
        .contains("déménagement"));

    assert!(matches!(
        store.revoke_mandate("no-such-mandate", "x", Actor::Ops, NOW),
        Err(StoreError::NotFound {
            what: "mandate",
            ..
        })
    ));
}

fn only_the_mandates_parties_may_revoke_it(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    organisation(store, OTHER_SIRET, "Bouleaux");
    let outsider = aidant(store, "aidant-2", &[OTHER_SIRET]);
    let stranger = usager(store, "fc-other", "Paul", "AUTRE");
    assert!(matches!(
        store.revoke_mandate(&w.mandate.id, "x", Actor::Aidant(outsider.id.clone()), NOW),
        Err(StoreError::NotAllowed(_))
    ));
    assert!(matches!(
        store.revoke_mandate(&w.mandate.id, "x", Actor::Usager(stranger.id.clone()), NOW),
        Err(StoreError::NotAllowed(_))
    ));
    assert!(store
        .mandate(&w.mandate.id)
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());

    let revoked = store
        .revoke_mandate(
            &w.mandate.id,
            "je révoque",
            Actor::Usager(w.usager.id.clone()),
            NOW + 3,
        )
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 3));
    let mine = store.mandates_of_usager(&w.usager.id).unwrap();
    assert_eq!(mine, [revoked]);
    let last = &all_entries(db)[0];
    assert_eq!(last.action, "mandate_revoked");
    assert_eq!(last.aidant_id, None);
    assert_eq!(last.detail.as_deref(), Some("by=usager"));
}

fn create_mandate_is_idempotent_by_id(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let mut m = new_mandate(
        &w.usager,
        &w.org,
        &w.aidant,
        &[Demarche::Famille, Demarche::Papiers],
        31,
    );
    m.id = Some("imported-mandate-1".into());
    let first = store.create_mandate(&m, None, NOW).unwrap();
    assert_eq!(first.id, "imported-mandate-1");
    assert_eq!(first.demarches, [Demarche::Papiers, Demarche::Famille]);
    assert_eq!(first.created_by, w.aidant.id);
    let count = all_entries(db).len();

    m.demarches = vec![Demarche::Loisirs];
    let second = store.create_mandate(&m, None, NOW + 1).unwrap();
    assert_eq!(second, first);
    assert_eq!(all_entries(db).len(), count);

    let created = &store
        .journal_entries(&JournalFilter {
            mandate_id: Some(first.id.clone()),
            ..JournalFilter::default()
        })
        .unwrap()[0];
    assert_eq!(created.action, "mandate_created");
    assert_eq!(created.aidant_id, None);
    assert_eq!(created.usager_id.as_deref(), Some(w.usager.id.as_str()));
}

fn create_mandate_rejects_unknown_references_and_bad_input(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let base = new_mandate(&w.usager, &w.org, &w.aidant, &[Demarche::Argent], 30);

    let mut m = base.clone();
    m.usager_id = "nobody".into();
    assert!(matches!(
        store.create_mandate(&m, None, NOW),
        Err(StoreError::NotFound { what: "usager", .. })
    ));
    let mut m = base.clone();
    m.organisation_id = "nowhere".into();
    assert!(matches!(
        store.create_mandate(&m, None, NOW),
        Err(StoreError::NotFound {
            what: "organisation",
            ..
        })
    ));
    let mut m = base.clone();
    m.created_by = "no-aidant".into();
    assert!(matches!(
        store.create_mandate(&m, None, NOW),
        Err(StoreError::NotFound { what: "aidant", .. })
    ));
    let mut m = base.clone();
    m.demarches.clear();
    assert!(matches!(
        store.create_mandate(&m, None, NOW),
        Err(StoreError::Invalid(_))
    ));
    let mut m = base;
    m.expires_at = m.created_at;
    assert!(matches!(
        store.create_mandate(&m, None, NOW),
        Err(StoreError::Invalid(_))
    ));
}

fn journal_chain_verifies_and_detects_edit(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    store
        .record_use(&use_of(&w, Demarche::Argent), NOW + 1)
        .unwrap();
    store
        .journal_append(
            &NewJournalEntry {
                action: JournalAction::AidantLogin.into(),
                aidant_id: Some(w.aidant.id.clone()),
                organisation_id: Some(w.org.id.clone()),
                ..NewJournalEntry::default()
            },
            NOW + 2,
        )
        .unwrap();
    let chain = store.journal_chain(1, 1000).unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[0].prev_hash, mandate_store::GENESIS_HASH);
    assert_eq!(verify_chain(&chain), Ok(()));

    db.raw_execute("UPDATE journal SET client_id = 'someone-else' WHERE seq = 2");
    let break_at = verify_chain(&store.journal_chain(1, 1000).unwrap()).unwrap_err();
    assert_eq!(break_at.seq, 2);
    assert_eq!(break_at.kind, ChainBreakKind::HashMismatch);

    db.raw_execute("DELETE FROM journal WHERE seq = 2");
    let break_at = verify_chain(&store.journal_chain(1, 1000).unwrap()).unwrap_err();
    assert_eq!(break_at.kind, ChainBreakKind::Gap { expected: 2 });
}

fn journal_filter_selects_newest_first(db: &TestDb) {
    let store = db.store();
    let w = world(store); // seq 1: mandate_created at NOW
    for i in 1..=4 {
        store
            .journal_append(
                &NewJournalEntry {
                    action: "aidant_login".into(),
                    aidant_id: Some(if i % 2 == 0 { "a-even" } else { "a-odd" }.into()),
                    detail: Some(format!("n={i}")),
                    ..NewJournalEntry::default()
                },
                NOW + i * 10,
            )
            .unwrap();
    }
    let all = all_entries(db);
    let seqs: Vec<_> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [5, 4, 3, 2, 1]);

    let even = store
        .journal_entries(&JournalFilter {
            aidant_id: Some("a-even".into()),
            ..JournalFilter::default()
        })
        .unwrap();
    let details: Vec<_> = even.iter().map(|e| e.detail.clone().unwrap()).collect();
    assert_eq!(details, ["n=4", "n=2"]);

    let window = store
        .journal_entries(&JournalFilter {
            since: Some(NOW + 20),
            until: Some(NOW + 30),
            ..JournalFilter::default()
        })
        .unwrap();
    assert_eq!(window.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 3]);

    let limited = store
        .journal_entries(&JournalFilter {
            limit: Some(2),
            ..JournalFilter::default()
        })
        .unwrap();
    assert_eq!(limited.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4]);

    let of_usager = store
        .journal_entries(&JournalFilter {
            usager_id: Some(w.usager.id.clone()),
            organisation_id: Some(w.org.id.clone()),
            ..JournalFilter::default()
        })
        .unwrap();
    assert_eq!(of_usager.len(), 1);
    assert_eq!(of_usager[0].action, "mandate_created");

    assert!(matches!(
        store.journal_append(&NewJournalEntry::default(), NOW),
        Err(StoreError::Invalid(_))
    ));
}

fn concurrent_record_use_keeps_the_chain_gap_free(db: &TestDb) {
    const THREADS: usize = 4;
    const USES: usize = 15;
    let store = Arc::new(db.store().clone());
    let w = Arc::new(world(&store));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                for i in 0..USES {
                    let mut u = use_of(&w, Demarche::Argent);
                    u.client_id = format!("client-{t}-{i}");
                    store.record_use(&u, NOW + i as i64).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread panicked");
    }
    let chain = store.journal_chain(1, 10_000).unwrap();
    assert_eq!(chain.len(), 1 + THREADS * USES);
    for (i, e) in chain.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
    }
    assert_eq!(verify_chain(&chain), Ok(()));
}

/// A journal of four entries: the mandate's creation, then three uses.
fn four_entries(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    for i in 1..=3 {
        store
            .record_use(&use_of(&w, Demarche::Argent), NOW + i)
            .unwrap();
    }
}

fn broken_at(db: &TestDb) -> ChainBreak {
    match db.store().verify_journal() {
        Err(VerifyError::Break(b)) => b,
        other => panic!("expected a chain break, got {other:?}"),
    }
}

fn journal_verify_passes_an_intact_journal(db: &TestDb) {
    four_entries(db);
    let report = db.store().verify_journal().unwrap();
    assert_eq!((report.entries, report.last_seq), (4, 4));
    assert_eq!(report.last_hash, all_entries(db)[0].hash);
}

fn journal_verify_locates_an_update(db: &TestDb) {
    four_entries(db);
    db.raw_execute("UPDATE journal SET demarche = 'social' WHERE seq = 3");
    let b = broken_at(db);
    assert_eq!((b.seq, b.kind), (3, ChainBreakKind::HashMismatch));
}

fn journal_verify_locates_a_delete(db: &TestDb) {
    four_entries(db);
    db.raw_execute("DELETE FROM journal WHERE seq = 3");
    let b = broken_at(db);
    assert_eq!((b.seq, b.kind), (4, ChainBreakKind::Gap { expected: 3 }));
}

fn journal_verify_locates_a_swap(db: &TestDb) {
    four_entries(db);
    db.raw_execute(
        "UPDATE journal SET seq = -1 WHERE seq = 2; \
         UPDATE journal SET seq = 2 WHERE seq = 3; \
         UPDATE journal SET seq = 3 WHERE seq = -1;",
    );
    let b = broken_at(db);
    assert_eq!(b.seq, 2, "{b}");
}

fn journal_verify_locates_a_deleted_first_entry(db: &TestDb) {
    four_entries(db);
    db.raw_execute("DELETE FROM journal WHERE seq = 1");
    let b = broken_at(db);
    assert_eq!((b.seq, b.kind), (2, ChainBreakKind::Gap { expected: 1 }));
}

fn disabling_an_aidant_keeps_memberships_and_refuses_use(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let off = store
        .set_aidant_active(&w.aidant.issuer, &w.aidant.subject, false, NOW)
        .unwrap();
    assert!(!off.active);
    assert_eq!(
        refusal(store.check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW
        )),
        Refusal::AidantInactive
    );
    let listed = store.aidants().unwrap();
    let (a, sirets) = listed.iter().find(|(a, _)| a.id == w.aidant.id).unwrap();
    assert!(!a.active);
    assert_eq!(sirets, &vec![SIRET.to_string()], "memberships kept");
    store
        .set_aidant_active(&w.aidant.issuer, &w.aidant.subject, true, NOW)
        .unwrap();
    assert!(store
        .check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW
        )
        .is_ok());
}

fn disabling_an_organisation_refuses_use(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    store.set_organisation_active(SIRET, false, NOW).unwrap();
    assert_eq!(
        refusal(store.check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW
        )),
        Refusal::OrganisationInactive
    );
    assert!(!store.organisations().unwrap()[0].active);
}

fn rotating_the_data_key_reseals_every_identity(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    for i in 0..4 {
        usager(store, &format!("fc-{i}"), "Jeanne", &format!("MARTIN{i}"));
    }
    let old = DataKey {
        kid: "data-2025".into(),
        key: [7; 32],
    };
    let new = || DataKey {
        kid: "data-2026".into(),
        key: [9; 32],
    };
    store.set_sealer(Sealer::new(new(), vec![old], [3; 32]));
    // Mid-rotation every identity stays readable.
    let mut done = store.reseal_usagers(2).unwrap();
    assert_eq!(done, 2);
    assert_eq!(
        store.usager(&w.usager.id).unwrap().unwrap().identity,
        w.usager.identity
    );
    while done > 0 {
        done = store.reseal_usagers(2).unwrap();
    }
    assert_eq!(
        store.data_key_usage().unwrap(),
        vec![("data-2026".to_string(), 5)]
    );
    // The old key can now go: everything opens with the new one alone.
    store.set_sealer(Sealer::new(new(), vec![], [3; 32]));
    assert_eq!(
        store.usager(&w.usager.id).unwrap().unwrap().identity,
        w.usager.identity
    );
    assert!(store
        .check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW
        )
        .is_ok());
}

fn mandates_bound_to_creator_serve_only_their_creator(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let colleague = aidant(store, "aidant-2", &[SIRET]);
    let listed = |a: &str| {
        store
            .usable_mandates(&w.org.id, a, &Demarche::ALL, NOW)
            .unwrap()
            .len()
    };
    assert_eq!(
        (listed(&w.aidant.id), listed(&colleague.id)),
        (1, 1),
        "default: any aidant"
    );
    let org = store
        .set_mandates_bound_to_creator(SIRET, true, NOW)
        .unwrap();
    assert!(org.mandates_bound_to_creator);
    assert_eq!((listed(&w.aidant.id), listed(&colleague.id)), (1, 0));
    assert_eq!(
        refusal(store.check_grant(
            &w.mandate.id,
            &colleague.id,
            &w.org.id,
            Demarche::Argent,
            NOW
        )),
        Refusal::NotCreator
    );
    assert!(store
        .check_grant(
            &w.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW
        )
        .is_ok());
    // Renaming the organisation keeps the option.
    let renamed = store
        .upsert_organisation(SIRET, "Acacias", true, NOW)
        .unwrap();
    assert!(renamed.mandates_bound_to_creator);
}

fn give(org_id: &str, aidant_id: &str, fc_sub: &str, demarches: &[Demarche]) -> GiveMandate {
    GiveMandate {
        franceconnect_sub: fc_sub.into(),
        identity: identity("Jeanne", "MARTIN"),
        organisation_id: org_id.into(),
        aidant_id: aidant_id.into(),
        demarches: demarches.to_vec(),
        expires_at: NOW + 365 * DAY,
        consent: serde_json::json!({"method": "franceconnect", "acr": "eidas1"}),
    }
}

fn giving_a_mandate_twice_from_two_organisations_makes_one_usager(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let other = organisation(store, OTHER_SIRET, "Tilleuls");
    let sophie = aidant(store, "sophie", &[OTHER_SIRET]);
    let a = store
        .give_mandate(
            &give(&w.org.id, &w.aidant.id, "fc-jeanne", &[Demarche::Argent]),
            NOW,
        )
        .unwrap();
    let b = store
        .give_mandate(
            &give(&other.id, &sophie.id, "fc-jeanne", &[Demarche::Logement]),
            NOW,
        )
        .unwrap();
    assert_eq!(
        a.usager.id, b.usager.id,
        "same FranceConnect subject, same usager"
    );
    assert_ne!(a.mandate.id, b.mandate.id);
    assert!(
        a.replaced.is_empty() && b.replaced.is_empty(),
        "other organisation: nothing replaced"
    );
    assert_eq!(store.mandates_of_usager(&a.usager.id).unwrap().len(), 2);
    let created = all_entries(db)
        .into_iter()
        .filter(|e| e.action == "mandate_created" && e.usager_id.as_deref() == Some(&a.usager.id))
        .count();
    assert_eq!(created, 2);
}

fn a_new_mandate_replaces_the_previous_one_of_the_same_organisation(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let first = store
        .give_mandate(
            &give(&w.org.id, &w.aidant.id, "fc-jeanne", &[Demarche::Argent]),
            NOW,
        )
        .unwrap();
    let second = store
        .give_mandate(
            &give(&w.org.id, &w.aidant.id, "fc-jeanne", &[Demarche::Social]),
            NOW + 60,
        )
        .unwrap();
    assert_eq!(second.replaced, vec![first.mandate.id.clone()]);
    let old = store.mandate(&first.mandate.id).unwrap().unwrap();
    assert_eq!(old.revoked_at, Some(NOW + 60));
    assert_eq!(
        refusal(store.check_grant(
            &first.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Argent,
            NOW + 61
        )),
        Refusal::Revoked
    );
    assert!(store
        .check_grant(
            &second.mandate.id,
            &w.aidant.id,
            &w.org.id,
            Demarche::Social,
            NOW + 61
        )
        .is_ok());
    let revoked = all_entries(db)
        .into_iter()
        .filter(|e| {
            e.action == "mandate_revoked" && e.mandate_id.as_deref() == Some(&first.mandate.id)
        })
        .count();
    assert_eq!(revoked, 1, "the end of the old mandate is journaled");
}

fn only_an_active_member_records_a_mandate(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let outsider = aidant(store, "outsider", &[]);
    let err = store
        .give_mandate(
            &give(&w.org.id, &outsider.id, "fc-nobody", &[Demarche::Argent]),
            NOW,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAllowed(_)), "{err}");
    assert!(
        store
            .usager_by_franceconnect_sub("fc-nobody")
            .unwrap()
            .is_none(),
        "nothing stored"
    );
}

fn retention_purge_deletes_the_old_and_keeps_the_journal_verifiable(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    for i in 1..=3 {
        store
            .record_use(&use_of(&w, Demarche::Argent), NOW + i)
            .unwrap();
    }
    store
        .revoke_mandate(&w.mandate.id, "fin", Actor::Ops, NOW + 10)
        .unwrap();
    let later = NOW + 800 * DAY;
    let mut g = give(&w.org.id, &w.aidant.id, "fc-later", &[Demarche::Social]);
    g.expires_at = later + 365 * DAY;
    let kept = store.give_mandate(&g, later).unwrap();
    let cutoff = NOW + 730 * DAY;
    let old = all_entries(db).iter().filter(|e| e.at < cutoff).count() as i64;

    // Small batches: several transactions, each recorded.
    let purged = store.purge_before(cutoff, later + 1, 2).unwrap();
    assert_eq!((purged.mandates, purged.usagers), (1, 1));
    assert_eq!(purged.journal_entries, old);
    assert_eq!(store.mandate(&w.mandate.id).unwrap(), None);
    assert_eq!(store.usager(&w.usager.id).unwrap(), None, "identity gone");
    assert!(store.mandate(&kept.mandate.id).unwrap().is_some());
    assert!(store.usager(&kept.usager.id).unwrap().is_some());
    let remaining = all_entries(db);
    assert!(remaining.iter().all(|e| e.at >= cutoff));
    assert!(remaining.iter().any(|e| e.action == "journal_purged"));

    // What remains verifies from its new start…
    let report = store.verify_journal().unwrap();
    assert_eq!(report.first_seq, old + 1);
    assert_eq!(report.entries, remaining.len() as i64);
    // …and a deletion that no purge recorded is still a gap.
    db.raw_execute(&format!(
        "DELETE FROM journal WHERE seq = {}",
        report.first_seq
    ));
    let b = broken_at(db);
    assert_eq!(
        (b.seq, b.kind),
        (report.first_seq + 1, ChainBreakKind::Gap { expected: 1 })
    );
}

fn retention_purge_with_nothing_old_changes_nothing(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    store
        .record_use(&use_of(&w, Demarche::Argent), NOW + 1)
        .unwrap();
    let before = all_entries(db);
    let purged = store.purge_before(NOW - DAY, NOW + 2, 100).unwrap();
    assert_eq!(purged, Purged::default());
    assert_eq!(all_entries(db), before, "no purge record either");
    assert_eq!(store.verify_journal().unwrap().first_seq, 1);
}

fn aidants_of_an_organisation_are_its_members(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    organisation(store, OTHER_SIRET, "Tilleuls");
    let sophie = aidant(store, "sophie", &[OTHER_SIRET, SIRET]);
    aidant(store, "other", &[OTHER_SIRET]);
    let mut ids: Vec<_> = store
        .aidants_of(&w.org.id)
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    ids.sort();
    let mut expected = vec![w.aidant.id.clone(), sophie.id];
    expected.sort();
    assert_eq!(ids, expected);
}

fn a_use_may_require_a_consent_level(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let given = store
        .give_mandate(
            &give(&w.org.id, &w.aidant.id, "fc-jeanne", &[Demarche::Argent]),
            NOW,
        )
        .unwrap();
    let mut u = Use {
        mandate_id: given.mandate.id.clone(),
        ..use_of(&w, Demarche::Argent)
    };
    u.consent_at_least = Some(Level::Eidas2);
    assert_eq!(
        refusal(store.record_use(&u, NOW + 1)),
        Refusal::ConsentLevel
    );
    u.consent_at_least = Some(Level::Eidas1);
    let grant = store.record_use(&u, NOW + 2).unwrap();
    assert_eq!(grant.consent_acr, Some(Level::Eidas1));
    // A mandate whose consent level was never recorded meets no required level.
    let mut imported = use_of(&w, Demarche::Argent);
    imported.consent_at_least = Some(Level::Eidas1);
    assert_eq!(
        refusal(store.record_use(&imported, NOW + 3)),
        Refusal::ConsentLevel
    );
    imported.consent_at_least = None;
    assert_eq!(
        store.record_use(&imported, NOW + 4).unwrap().consent_acr,
        None
    );
}

fn an_aidant_may_act_only_as_an_active_member_of_an_active_organisation(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let other = organisation(store, OTHER_SIRET, "Tilleuls");
    assert!(store.aidant_may_act(&w.aidant.id, &w.org.id).unwrap());
    assert!(
        !store.aidant_may_act(&w.aidant.id, &other.id).unwrap(),
        "not a member"
    );
    store
        .set_organisation_active(SIRET, false, NOW + 1)
        .unwrap();
    assert!(
        !store.aidant_may_act(&w.aidant.id, &w.org.id).unwrap(),
        "organisation disabled"
    );
    store.set_organisation_active(SIRET, true, NOW + 2).unwrap();
    store
        .set_aidant_active(ISSUER, "aidant-1", false, NOW + 3)
        .unwrap();
    assert!(
        !store.aidant_may_act(&w.aidant.id, &w.org.id).unwrap(),
        "aidant disabled"
    );
}

/// Issue #12: « Je ne donne pas mandat » leaves one journal entry (who asked, for what) and
/// no mandate; the organisation reads it in its journal.
fn a_refused_mandate_is_journaled_and_nothing_else(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    let filter = JournalFilter {
        organisation_id: Some(w.org.id.clone()),
        ..JournalFilter::default()
    };
    let before = store.journal_entries(&filter).unwrap().len();
    store
        .journal_append(
            &NewJournalEntry {
                action: JournalAction::MandateRefused.into(),
                aidant_id: Some(w.aidant.id.clone()),
                organisation_id: Some(w.org.id.clone()),
                detail: Some("argent,social".into()),
                ..NewJournalEntry::default()
            },
            NOW + 1,
        )
        .unwrap();
    let entries = store.journal_entries(&filter).unwrap();
    assert_eq!(entries.len(), before + 1, "one entry, nothing else");
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "mandate_refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].detail.as_deref(), Some("argent,social"));
    assert!(store.verify_journal().is_ok());
}

/// Issue #12: a partial change. One démarche ends (journaled with it), the others still
/// serve; ending the last ends the mandate; only its parties may.
fn ending_one_demarche_keeps_the_rest_of_the_mandate(db: &TestDb) {
    let store = db.store();
    let w = world(store);
    organisation(store, OTHER_SIRET, "Tilleuls");
    let outsider = aidant(store, "outsider", &[OTHER_SIRET]);
    assert!(matches!(
        store.end_demarche(
            &w.mandate.id,
            Demarche::Argent,
            Actor::Aidant(outsider.id),
            NOW + 1
        ),
        Err(StoreError::NotAllowed(_))
    ));
    let changed = store
        .end_demarche(
            &w.mandate.id,
            Demarche::Argent,
            Actor::Aidant(w.aidant.id.clone()),
            NOW + 2,
        )
        .unwrap();
    assert_eq!(changed.demarches, [Demarche::Social]);
    assert!(changed.is_active(NOW + 2));
    assert_eq!(
        refusal(store.record_use(&use_of(&w, Demarche::Argent), NOW + 3)),
        Refusal::DemarcheNotCovered
    );
    store
        .record_use(&use_of(&w, Demarche::Social), NOW + 4)
        .unwrap();
    assert!(matches!(
        store.end_demarche(&w.mandate.id, Demarche::Argent, Actor::Ops, NOW + 5),
        Err(StoreError::Invalid(_))
    ));
    let ended = store
        .end_demarche(
            &w.mandate.id,
            Demarche::Social,
            Actor::Usager(w.usager.id.clone()),
            NOW + 6,
        )
        .unwrap();
    assert_eq!(
        ended.revoked_at,
        Some(NOW + 6),
        "its last démarche ended it"
    );
    let entries = store
        .journal_entries(&JournalFilter {
            mandate_id: Some(w.mandate.id.clone()),
            ..JournalFilter::default()
        })
        .unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.demarche))
        .collect();
    assert_eq!(
        actions,
        [
            ("mandate_revoked", None),
            ("mandate_used", Some(Demarche::Social)),
            ("demarche_ended", Some(Demarche::Argent)),
            ("mandate_created", None),
        ]
    );
    assert!(store.verify_journal().is_ok());
}
