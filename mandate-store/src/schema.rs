//! Diesel table definitions, kept by hand in step with `migrations/` (one set for both
//! backends, so only portable SQL types appear here).

diesel::table! {
    organisations (id) {
        id -> Text,
        siret -> Text,
        name -> Text,
        active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        mandates_bound_to_creator -> Bool,
    }
}

diesel::table! {
    aidants (id) {
        id -> Text,
        issuer -> Text,
        subject -> Text,
        email -> Text,
        given_name -> Text,
        family_name -> Text,
        active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    memberships (aidant_id, organisation_id) {
        aidant_id -> Text,
        organisation_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    usagers (id) {
        id -> Text,
        subject_hash -> Text,
        identity_kid -> Text,
        identity_sealed -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    mandates (id) {
        id -> Text,
        usager_id -> Text,
        organisation_id -> Text,
        created_by -> Text,
        demarches -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
        consent -> Text,
    }
}

diesel::table! {
    journal (seq) {
        seq -> BigInt,
        at -> BigInt,
        action -> Text,
        aidant_id -> Nullable<Text>,
        organisation_id -> Nullable<Text>,
        usager_id -> Nullable<Text>,
        mandate_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        demarche -> Nullable<Text>,
        detail -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

// Only the joins the store uses; aidants are joined by explicit ON clauses because a
// mandate names two aidant roles (creator, and whoever is using it).
diesel::joinable!(mandates -> usagers (usager_id));
diesel::joinable!(mandates -> organisations (organisation_id));
diesel::joinable!(memberships -> organisations (organisation_id));

diesel::allow_tables_to_appear_in_same_query!(
    organisations,
    aidants,
    memberships,
    usagers,
    mandates,
    journal,
);
