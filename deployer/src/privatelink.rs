//! The cluster's PrivateLink service name, looked up with the DSQL API when
//! the settings place the function in a VPC and do not name it.

use aws_config::{BehaviorVersion, Region};

use crate::config::{validate_service_name, Settings};

/// A failed lookup of the service name.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("GetVpcEndpointServiceName for DSQL cluster {cluster_id} failed: {message}; check `cluster_id` and `region`, or set `dsql_service_name`")]
    Aws { cluster_id: String, message: String },

    #[error("GetVpcEndpointServiceName for DSQL cluster {cluster_id} returned an unexpected name: {reason}; set `dsql_service_name`")]
    Unexpected { cluster_id: String, reason: String },
}

/// Returns the settings with the VPC's `dsql_service_name` filled in. It
/// calls GetVpcEndpointServiceName only when a VPC is set without the name.
pub async fn with_service_name(mut settings: Settings) -> Result<Settings, LookupError> {
    let needs_lookup = settings
        .vpc
        .as_ref()
        .is_some_and(|vpc| vpc.dsql_service_name.is_none());
    if !needs_lookup {
        return Ok(settings);
    }

    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .load()
        .await;
    let client = aws_sdk_dsql::Client::new(&config);
    let name = look_up(&client, &settings.cluster_id, &settings.region).await?;

    if let Some(vpc) = settings.vpc.as_mut() {
        vpc.dsql_service_name = Some(name);
    }
    Ok(settings)
}

/// Asks DSQL for the cluster's service name and checks its form.
async fn look_up(
    client: &aws_sdk_dsql::Client,
    cluster_id: &str,
    region: &str,
) -> Result<String, LookupError> {
    let output = client
        .get_vpc_endpoint_service_name()
        .identifier(cluster_id)
        .send()
        .await
        .map_err(|err| LookupError::Aws {
            cluster_id: cluster_id.to_string(),
            message: crate::aws::error_message(&err),
        })?;

    let name = validate_service_name(output.service_name().to_string(), region).map_err(|err| {
        LookupError::Unexpected {
            cluster_id: cluster_id.to_string(),
            reason: err.to_string(),
        }
    })?;
    tracing::info!(cluster_id, service_name = %name, "looked up the cluster's PrivateLink service name");
    Ok(name)
}
