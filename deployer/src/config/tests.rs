//! Unit tests of the settings: defaults, every rejection and the file format.

use super::*;

const ENDPOINT: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

fn minimal() -> RawSettings {
    RawSettings {
        stack_name: Some("dsql-tokens".into()),
        region: Some("us-east-1".into()),
        cluster_endpoint: Some(ENDPOINT.into()),
        ..RawSettings::default()
    }
}

fn invalid_field(result: Result<Settings, ConfigError>) -> (&'static str, String, String) {
    match result {
        Err(ConfigError::Invalid { field, value, fix }) => (field, value, fix),
        other => panic!("expected an invalid-setting error, got {other:?}"),
    }
}

#[test]
fn minimal_settings_get_defaults() {
    let settings = minimal().validate(None).unwrap();

    assert_eq!(settings.cluster_id, "abcdefghijklmnopqrstuvwxyz");
    assert_eq!(settings.database_user, "admin");
    assert_eq!(settings.database_name, "postgres");
    assert_eq!(settings.database_port, 5432);
    assert_eq!(settings.secret_name, "dsql-tokens/dsql-auth-token");
    assert_eq!(settings.schedule.expression(), "rate(4 hours)");
    assert_eq!(settings.rotation_period_seconds(), 5 * 3600);
    assert_eq!(settings.token_lifetime_seconds, 36_000);
    assert_eq!(settings.log_retention_days, 30);
}

#[test]
fn missing_region_names_all_sources() {
    let raw = RawSettings {
        region: None,
        ..minimal()
    };

    let err = raw.validate(None).unwrap_err();

    let message = err.to_string();
    assert!(message.contains("`region`"), "{message}");
    assert!(message.contains("--region"), "{message}");
    assert!(message.contains("AWS_REGION"), "{message}");
}

#[test]
fn region_from_environment_is_last_resort() {
    let from_env = RawSettings {
        region: None,
        ..minimal()
    }
    .validate(Some("us-east-1".into()));
    let file_wins = minimal().validate(Some("eu-west-1".into()));

    assert_eq!(from_env.unwrap().region, "us-east-1");
    assert_eq!(file_wins.unwrap().region, "us-east-1");
}

#[test]
fn endpoint_that_is_not_dsql_is_rejected() {
    let raw = RawSettings {
        cluster_endpoint: Some("mydb.cluster-abc.us-east-1.rds.amazonaws.com".into()),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "cluster_endpoint");
    assert_eq!(value, "mydb.cluster-abc.us-east-1.rds.amazonaws.com");
    assert!(fix.contains(".dsql.us-east-1.on.aws"), "{fix}");
}

#[test]
fn endpoint_with_scheme_is_rejected() {
    let raw = RawSettings {
        cluster_endpoint: Some(format!("postgres://{ENDPOINT}:5432")),
        ..minimal()
    };

    let (field, _, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "cluster_endpoint");
    assert!(fix.contains("without scheme, port or path"), "{fix}");
}

#[test]
fn endpoint_in_other_region_is_rejected() {
    let raw = RawSettings {
        cluster_endpoint: Some("abc.dsql.eu-west-1.on.aws".into()),
        ..minimal()
    };

    let (_, _, fix) = invalid_field(raw.validate(None));

    assert!(fix.contains("another region"), "{fix}");
}

#[test]
fn local_endpoint_needs_explicit_allow() {
    let denied = RawSettings {
        cluster_endpoint: Some("localhost".into()),
        ..minimal()
    };
    let allowed = RawSettings {
        allow_local_endpoint: Some(true),
        ..denied.clone()
    };

    let (_, _, fix) = invalid_field(denied.validate(None));
    let settings = allowed.validate(None).unwrap();

    assert!(fix.contains("allow_local_endpoint"), "{fix}");
    assert_eq!(settings.cluster_endpoint, "localhost");
    assert_eq!(settings.cluster_id, "local");
}

#[test]
fn cluster_id_other_than_endpoints_is_rejected() {
    let raw = RawSettings {
        cluster_id: Some("otherclusterid".into()),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "cluster_id");
    assert_eq!(value, "otherclusterid");
    assert!(
        fix.contains("set it to abcdefghijklmnopqrstuvwxyz"),
        "{fix}"
    );
}

#[test]
fn cluster_id_matching_endpoint_is_accepted() {
    let raw = RawSettings {
        cluster_id: Some("abcdefghijklmnopqrstuvwxyz".into()),
        ..minimal()
    };

    let settings = raw.validate(None).unwrap();

    assert_eq!(settings.cluster_id, "abcdefghijklmnopqrstuvwxyz");
}

#[test]
fn cluster_id_names_local_endpoints_cluster() {
    let raw = RawSettings {
        cluster_endpoint: Some("127.0.0.1".into()),
        allow_local_endpoint: Some(true),
        cluster_id: Some("realclusterid".into()),
        ..minimal()
    };

    let settings = raw.validate(None).unwrap();

    assert_eq!(settings.cluster_id, "realclusterid");
}

#[test]
fn missing_settings_file_names_fix_once() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cfg.yaml");

    let error = RawSettings::from_file(&path, true).unwrap_err();

    let message = format!("{:#}", anyhow::Error::from(error));
    let expected = format!(
        "settings file {0} not found. Create it with `deployer init --config {0}`, or fix the path",
        path.display()
    );
    assert_eq!(message, expected);
}

#[test]
fn missing_default_file_is_empty() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("deploy.yaml");

    let raw = RawSettings::from_file(&path, false).unwrap();

    assert_eq!(raw.stack_name, None);
}

#[test]
fn unreadable_settings_file_says_why_once() {
    let directory = tempfile::tempdir().unwrap();

    let error = RawSettings::from_file(directory.path(), true).unwrap_err();

    let message = format!("{:#}", anyhow::Error::from(error));
    assert!(
        message.starts_with("cannot read settings file"),
        "{message}"
    );
    assert_eq!(message.matches("directory").count(), 1, "{message}");
}

#[test]
fn unknown_key_suggests_nearest() {
    let err =
        RawSettings::from_yaml("stack_name: a\nregoin: us-east-1\n", "deploy.yaml").unwrap_err();

    let message = err.to_string();
    assert!(message.contains("unknown setting `regoin`"), "{message}");
    assert!(message.contains("did you mean `region`?"), "{message}");
}

#[test]
fn unknown_key_without_neighbour_lists_all() {
    let err = RawSettings::from_yaml("colour: blue\n", "deploy.yaml").unwrap_err();

    let message = err.to_string();
    assert!(
        message.contains("valid settings are: stack_name"),
        "{message}"
    );
}

#[test]
fn invalid_stack_names_are_rejected() {
    for name in ["1stack", "my_stack", "stack name", "", &"a".repeat(57)] {
        let raw = RawSettings {
            stack_name: Some(name.to_string()),
            ..minimal()
        };

        let result = raw.validate(None);

        match result {
            Err(ConfigError::Invalid {
                field: "stack_name",
                ..
            })
            | Err(ConfigError::Missing {
                field: "stack_name",
                ..
            }) => {}
            other => panic!("stack name {name:?} gave {other:?}"),
        }
    }
}

#[test]
fn admin_user_is_case_insensitive() {
    let raw = RawSettings {
        database_user: Some("ADMIN".into()),
        ..minimal()
    };

    let settings = raw.validate(None).unwrap();

    assert_eq!(settings.database_user, "admin");
}

#[test]
fn token_lifetime_bounds_are_enforced() {
    let too_long = RawSettings {
        token_lifetime_seconds: Some(604_801),
        ..minimal()
    };
    let too_short = RawSettings {
        token_lifetime_seconds: Some(7200),
        ..minimal()
    };
    let at_max = RawSettings {
        token_lifetime_seconds: Some(604_800),
        ..minimal()
    };

    let (_, _, long_fix) = invalid_field(too_long.validate(None));
    let (_, _, short_fix) = invalid_field(too_short.validate(None));

    assert!(long_fix.contains("604800"), "{long_fix}");
    assert!(short_fix.contains("36000"), "{short_fix}");
    assert_eq!(
        at_max.validate(None).unwrap().token_lifetime_seconds,
        604_800
    );
}

#[test]
fn log_retention_must_be_cloudwatch_value() {
    let raw = RawSettings {
        log_retention_days: Some(31),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "log_retention_days");
    assert_eq!(value, "31");
    assert!(fix.contains("30, 60"), "{fix}");
}

#[test]
fn flags_overlay_file() {
    let file = RawSettings::from_yaml("stack_name: from-file\nregion: eu-west-1\n", "deploy.yaml")
        .unwrap();
    let flags = RawSettings {
        stack_name: Some("from-flag".into()),
        ..RawSettings::default()
    };

    let merged = file.overlay(flags);

    assert_eq!(merged.stack_name.as_deref(), Some("from-flag"));
    assert_eq!(merged.region.as_deref(), Some("eu-west-1"));
}

const ROLE: &str = "arn:aws:iam::111122223333:role/app-reader";

fn in_vpc() -> RawSettings {
    RawSettings {
        vpc_id: Some("vpc-0123456789abcdef0".into()),
        vpc_cidr: Some("10.0.0.0/16".into()),
        subnet_ids: Some(vec!["subnet-0123456789abcdef0".into()]),
        dsql_service_name: Some("com.amazonaws.us-east-1.dsql-a1b2".into()),
        ..minimal()
    }
}

#[test]
fn schedule_under_four_hours_is_rejected() {
    let raw = RawSettings {
        rotation_schedule: Some("rate(2 hours)".into()),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "rotation_schedule");
    assert_eq!(value, "rate(2 hours)");
    assert!(fix.contains("rate(4 hours)"), "{fix}");
}

#[test]
fn token_lifetime_over_maximum_is_rejected() {
    let raw = RawSettings {
        token_lifetime_seconds: Some(604_801),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "token_lifetime_seconds");
    assert_eq!(value, "604801");
    assert!(fix.contains("at most 604800 seconds"), "{fix}");
}

#[test]
fn token_lifetime_under_two_periods_is_rejected() {
    let raw = RawSettings {
        rotation_schedule: Some("rate(12 hours)".into()),
        token_lifetime_seconds: Some(2 * 13 * 3600 - 1),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "token_lifetime_seconds");
    assert_eq!(value, "93599");
    assert!(fix.contains("at least 93600 seconds"), "{fix}");
}

#[test]
fn token_lifetime_of_two_periods_is_accepted() {
    let raw = RawSettings {
        rotation_schedule: Some("rate(12 hours)".into()),
        token_lifetime_seconds: Some(93_600),
        ..minimal()
    };

    let settings = raw.validate(None).unwrap();

    assert_eq!(settings.token_lifetime_seconds, 93_600);
}

#[test]
fn token_lifetime_check_counts_window() {
    let raw = RawSettings {
        token_lifetime_seconds: Some(28_800),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "token_lifetime_seconds");
    assert_eq!(value, "28800");
    assert!(fix.contains("at least 36000 seconds"), "{fix}");
}

#[test]
fn default_lifetime_is_two_periods() {
    let raw = RawSettings {
        rotation_schedule: Some("rate(1 day)".into()),
        rotation_window_hours: Some(2),
        ..minimal()
    };

    let settings = raw.validate(None).unwrap();

    assert_eq!(settings.rotation_period_seconds(), 26 * 3600);
    assert_eq!(settings.token_lifetime_seconds, 2 * 26 * 3600);
}

#[test]
fn long_rates_are_rejected() {
    for (schedule, period_hours) in [
        ("rate(4 days)", "97 hours"),
        ("rate(84 hours)", "85 hours"),
        ("rate(1000 days)", "24001 hours"),
        ("rate(18446744073709551615 days)", "5124095576030431 hours"),
    ] {
        let raw = RawSettings {
            rotation_schedule: Some(schedule.into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "rotation_schedule", "{schedule}");
        assert_eq!(value, schedule);
        assert!(fix.contains(period_hours), "{schedule}: {fix}");
        assert!(fix.contains("rate(83 hours)"), "{schedule}: {fix}");
        assert!(fix.contains("rate(3 days)"), "{schedule}: {fix}");
    }
}

#[test]
fn long_rate_fix_follows_window() {
    let raw = RawSettings {
        rotation_schedule: Some("rate(80 hours)".into()),
        rotation_window_hours: Some(13),
        ..minimal()
    };

    let (field, _, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "rotation_schedule");
    assert!(fix.contains("93 hours"), "{fix}");
    assert!(fix.contains("rate(71 hours)"), "{fix}");
    assert!(fix.contains("rate(2 days)"), "{fix}");
}

#[test]
fn longest_rates_are_accepted() {
    for (schedule, lifetime) in [("rate(3 days)", 2 * 73 * 3600), ("rate(83 hours)", 604_800)] {
        let raw = RawSettings {
            rotation_schedule: Some(schedule.into()),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.token_lifetime_seconds, lifetime, "{schedule}");
    }
}

#[test]
fn long_cron_period_is_rejected() {
    let raw = RawSettings {
        rotation_schedule: Some("cron(0 0 ? * MON *)".into()),
        rotation_period_hours: Some(168),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "rotation_period_hours");
    assert_eq!(value, "168");
    assert!(fix.contains("169 hours"), "{fix}");
    assert!(fix.contains("at most 83 hours apart"), "{fix}");
}

#[test]
fn artifacts_stack_named_as_stack_is_rejected() {
    let explicit = RawSettings {
        artifacts_stack_name: Some("dsql-tokens".into()),
        ..minimal()
    };
    let by_default = RawSettings {
        stack_name: Some("dsql-token-rotation-artifacts".into()),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(explicit.validate(None));
    let (default_field, default_value, _) = invalid_field(by_default.validate(None));

    assert_eq!(field, "artifacts_stack_name");
    assert_eq!(value, "dsql-tokens");
    assert!(fix.contains("other than `stack_name`"), "{fix}");
    assert_eq!(default_field, "artifacts_stack_name");
    assert_eq!(default_value, "dsql-token-rotation-artifacts");
}

#[test]
fn log_retentions_cloudwatch_rejects() {
    for days in [
        0, 2, 4, 6, 10, 31, 45, 100, 364, 366, 730, 1095, 3650, 3654, 9999,
    ] {
        let raw = RawSettings {
            log_retention_days: Some(days),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "log_retention_days");
        assert_eq!(value, days.to_string());
        assert!(fix.contains("1, 3, 5, 7, 14, 30"), "{fix}");
    }
}

#[test]
fn log_retentions_cloudwatch_accepts() {
    for days in LOG_RETENTION_DAYS {
        let raw = RawSettings {
            log_retention_days: Some(days),
            ..minimal()
        };

        assert_eq!(raw.validate(None).unwrap().log_retention_days, days);
    }
}

#[test]
fn bucket_names_s3_rejects() {
    let cases = [
        ("my..bucket", "two adjacent dots"),
        ("192.168.1.1", "IP address"),
        ("192.168.01.1", "IP address"),
        ("xn--bucket", "start with xn--"),
        ("sthree-bucket", "start with sthree-"),
        ("sthree-configurator-bucket", "start with sthree-"),
        ("amzn-s3-demo-bucket", "start with amzn-s3-demo-"),
        ("bucket-s3alias", "end with -s3alias"),
        ("bucket--ol-s3", "end with --ol-s3"),
        ("bucket.mrap", "end with .mrap"),
        ("bucket--x-s3", "end with --x-s3"),
        ("bucket--table-s3", "end with --table-s3"),
        ("Bucket", "3 to 63 lowercase"),
        ("ab", "3 to 63 lowercase"),
        ("-bucket", "3 to 63 lowercase"),
    ];
    for (bucket, expected) in cases {
        let raw = RawSettings {
            artifacts_bucket: Some(bucket.into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "artifacts_bucket", "{bucket}");
        assert_eq!(value, bucket);
        assert!(fix.contains(expected), "{bucket}: {fix}");
    }
}

#[test]
fn bucket_names_s3_accepts() {
    for bucket in [
        "my-artifacts-bucket",
        "my.bucket.example",
        "192.168.1.1.bucket",
        "abc",
        "bucket-xn--a",
        "s3alias-bucket",
    ] {
        let raw = RawSettings {
            artifacts_bucket: Some(bucket.into()),
            ..minimal()
        };

        let settings = raw.validate(None).unwrap();

        assert_eq!(settings.artifacts_bucket.as_deref(), Some(bucket));
    }
}

#[test]
fn application_roles_are_kept_in_order() {
    let roles = vec![
        ROLE.to_string(),
        "arn:aws:iam::444455556666:role/service/path/reader+1".to_string(),
    ];
    let raw = RawSettings {
        application_role_arns: Some(roles.clone()),
        ..minimal()
    };

    let settings = raw.validate(None).unwrap();

    assert_eq!(settings.application_role_arns, roles);
}

#[test]
fn malformed_application_role_is_rejected() {
    let malformed = [
        "app-reader",
        "arn:aws:iam::1111:role/app",
        "arn:aws:iam::111122223333:user/app",
        "arn:aws:sts::111122223333:assumed-role/app/session",
        "arn:aws:iam:us-east-1:111122223333:role/app",
        "arn:aws:iam::111122223333:role/app,other",
        "arn:aws:iam::111122223333:role/",
        "arn:aws-cn:iam::111122223333:role/app",
    ];
    for arn in malformed {
        let raw = RawSettings {
            application_role_arns: Some(vec![ROLE.into(), arn.into()]),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "application_role_arns", "{arn}");
        assert_eq!(value, arn);
        assert!(fix.starts_with("use a"), "{arn}: {fix}");
    }
}

#[test]
fn duplicate_application_role_is_rejected() {
    let raw = RawSettings {
        application_role_arns: Some(vec![ROLE.into(), ROLE.into()]),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "application_role_arns");
    assert_eq!(value, ROLE);
    assert_eq!(fix, "list each role once");
}

#[test]
fn kms_key_choices_are_parsed() {
    let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let cases = [
        (None, KmsKey::AwsManaged),
        (Some("aws-managed"), KmsKey::AwsManaged),
        (Some("create"), KmsKey::Create),
        (Some(arn), KmsKey::Existing(arn.into())),
    ];
    for (text, expected) in cases {
        let raw = RawSettings {
            kms_key: text.map(String::from),
            ..minimal()
        };

        assert_eq!(raw.validate(None).unwrap().kms_key, expected, "{text:?}");
    }
}

#[test]
fn kms_key_in_other_region_is_rejected() {
    let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let raw = RawSettings {
        kms_key: Some(arn.into()),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "kms_key");
    assert_eq!(value, arn);
    assert!(fix.contains("use a key in us-east-1"), "{fix}");
}

#[test]
fn kms_alias_or_malformed_key_is_rejected() {
    let cases = [
        (
            "arn:aws:kms:us-east-1:111122223333:alias/secrets",
            "not an alias",
        ),
        (
            "alias/aws/secretsmanager",
            "use aws-managed, create, or a key ARN",
        ),
        (
            "arn:aws:kms:us-east-1:1111:key/abc",
            "use aws-managed, create, or a key ARN",
        ),
    ];
    for (text, expected) in cases {
        let raw = RawSettings {
            kms_key: Some(text.into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "kms_key");
        assert_eq!(value, text);
        assert!(fix.contains(expected), "{text}: {fix}");
    }
}

#[test]
fn encrypted_logs_need_customer_key() {
    let raw = RawSettings {
        encrypt_logs: Some(true),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "encrypt_logs");
    assert_eq!(value, "true");
    assert!(fix.contains("`kms_key` to create"), "{fix}");
}

#[test]
fn subnets_without_vpc_are_rejected() {
    let raw = RawSettings {
        vpc_id: None,
        ..in_vpc()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "subnet_ids");
    assert_eq!(value, "subnet-0123456789abcdef0");
    assert!(fix.contains("set `vpc_id`"), "{fix}");
}

#[test]
fn endpoint_settings_without_vpc_are_rejected() {
    let cases = [
        RawSettings {
            vpc_cidr: Some("10.0.0.0/16".into()),
            ..minimal()
        },
        RawSettings {
            dsql_endpoint_id: Some("vpce-0123456789abcdef0".into()),
            ..minimal()
        },
        RawSettings {
            dsql_service_name: Some("com.amazonaws.us-east-1.dsql-a1b2".into()),
            ..minimal()
        },
    ];
    for raw in cases {
        let (field, _, fix) = invalid_field(raw.validate(None));

        assert!(fix.contains(&format!("or remove `{field}`")), "{fix}");
    }
}

#[test]
fn vpc_settings_are_validated() {
    let settings = in_vpc().validate(None).unwrap();

    let vpc = settings.vpc.unwrap();
    assert_eq!(vpc.vpc_id, "vpc-0123456789abcdef0");
    assert_eq!(vpc.subnet_ids, ["subnet-0123456789abcdef0"]);
    assert_eq!(vpc.secretsmanager_endpoint_id, None);
    assert_eq!(
        vpc.dsql_service_name.as_deref(),
        Some("com.amazonaws.us-east-1.dsql-a1b2")
    );
}

#[test]
fn vpc_without_subnets_is_missing_them() {
    let raw = RawSettings {
        subnet_ids: None,
        ..in_vpc()
    };

    let err = raw.validate(None).unwrap_err();

    assert!(
        matches!(
            err,
            ConfigError::Missing {
                field: "subnet_ids",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn vpc_without_service_name_leaves_lookup() {
    let raw = RawSettings {
        dsql_service_name: None,
        ..in_vpc()
    };

    let settings = raw.validate(None).unwrap();

    assert_eq!(settings.vpc.unwrap().dsql_service_name, None);
}

#[test]
fn invalid_vpc_values_are_rejected() {
    let cases = [
        (
            RawSettings {
                vpc_id: Some("vpc-xyz".into()),
                ..in_vpc()
            },
            "vpc_id",
        ),
        (
            RawSettings {
                subnet_ids: Some(vec!["sub-1".into()]),
                ..in_vpc()
            },
            "subnet_ids",
        ),
        (
            RawSettings {
                vpc_cidr: Some("10.0.0.0/8".into()),
                ..in_vpc()
            },
            "vpc_cidr",
        ),
        (
            RawSettings {
                vpc_cidr: Some("10.0.0.1/16".into()),
                ..in_vpc()
            },
            "vpc_cidr",
        ),
        (
            RawSettings {
                vpc_cidr: Some("10.0.0.0".into()),
                ..in_vpc()
            },
            "vpc_cidr",
        ),
        (
            RawSettings {
                dsql_service_name: Some("com.amazonaws.us-east-1.dsql".into()),
                ..in_vpc()
            },
            "dsql_service_name",
        ),
        (
            RawSettings {
                dsql_service_name: Some("com.amazonaws.eu-west-1.dsql-a1b2".into()),
                ..in_vpc()
            },
            "dsql_service_name",
        ),
        (
            RawSettings {
                dsql_endpoint_id: Some("vpc-0123456789abcdef0".into()),
                ..in_vpc()
            },
            "dsql_endpoint_id",
        ),
    ];
    for (raw, expected) in cases {
        let (field, _, _) = invalid_field(raw.validate(None));

        assert_eq!(field, expected);
    }
}

#[test]
fn cidr_with_host_bits_names_network() {
    let raw = RawSettings {
        vpc_cidr: Some("10.0.3.0/16".into()),
        ..in_vpc()
    };

    let (_, _, fix) = invalid_field(raw.validate(None));

    assert!(fix.contains("10.0.0.0/16"), "{fix}");
}

#[test]
fn alarm_email_is_checked() {
    for address in [
        "ops",
        "ops@",
        "@example.com",
        "ops@example",
        "a b@example.com",
    ] {
        let raw = RawSettings {
            alarm_email: Some(address.into()),
            ..minimal()
        };

        let (field, value, _) = invalid_field(raw.validate(None));

        assert_eq!(field, "alarm_email");
        assert_eq!(value, address);
    }
}

#[test]
fn reserved_concurrency_range_is_enforced() {
    let raw = RawSettings {
        function_reserved_concurrency: Some(0),
        ..minimal()
    };

    let (field, value, fix) = invalid_field(raw.validate(None));

    assert_eq!(field, "function_reserved_concurrency");
    assert_eq!(value, "0");
    assert_eq!(fix, "use a value from 1 to 1000");
}

#[test]
fn settings_file_takes_lists() {
    let text = "application_role_arns:\n  - arn:aws:iam::111122223333:role/a\nsubnet_ids: [subnet-0123456789abcdef0]\nkms_key: create\n";

    let raw = RawSettings::from_yaml(text, "deploy.yaml").unwrap();

    assert_eq!(
        raw.application_role_arns,
        Some(vec!["arn:aws:iam::111122223333:role/a".to_string()])
    );
    assert_eq!(
        raw.subnet_ids,
        Some(vec!["subnet-0123456789abcdef0".to_string()])
    );
    assert_eq!(raw.kms_key.as_deref(), Some("create"));
}

#[test]
fn new_settings_default_to_least_setup() {
    let settings = minimal().validate(None).unwrap();

    assert!(settings.application_role_arns.is_empty());
    assert_eq!(settings.kms_key, KmsKey::AwsManaged);
    assert!(!settings.encrypt_logs);
    assert_eq!(settings.vpc, None);
    assert_eq!(settings.alarm_email, None);
    assert_eq!(settings.function_reserved_concurrency, 2);
}

#[test]
fn connect_host_is_validated() {
    let cases = [
        ("localhost", "allow_local_endpoint"),
        ("https://db.example.com", "without scheme or port"),
        ("db.example.com:5432", "without scheme or port"),
        ("db", "without scheme or port"),
    ];
    for (host, expected) in cases {
        let raw = RawSettings {
            connect_host: Some(host.into()),
            ..minimal()
        };

        let (field, value, fix) = invalid_field(raw.validate(None));

        assert_eq!(field, "connect_host");
        assert_eq!(value, host);
        assert!(fix.contains(expected), "{host}: {fix}");
    }
}

#[test]
fn connect_host_is_kept() {
    let raw = RawSettings {
        connect_host: Some("db.internal.example.com".into()),
        ..minimal()
    };

    let settings = raw.validate(None).unwrap();

    assert_eq!(
        settings.connect_host.as_deref(),
        Some("db.internal.example.com")
    );
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("region", "region"), 0);
    assert_eq!(edit_distance("regoin", "region"), 2);
    assert_eq!(edit_distance("", "abc"), 3);
}
