<#
.SYNOPSIS
  Points Hugging Face clients at the mounted cache: sets HF_HUB_CACHE for the current user
  (default) or for the whole machine (-Scope Machine, as administrator).
.DESCRIPTION
  Also sets HF_HUB_DISABLE_SYMLINKS_WARNING=1: through the mount huggingface_hub cannot create
  symlinks (the view shows none) and falls back to copies, which `hfcachefs dedupe` turns back
  into links on the store. New processes see the variables; running ones do not.
.EXAMPLE
  .\set-hf-hub-cache.ps1 -Path 'H:\'
  .\set-hf-hub-cache.ps1 -Path 'H:\' -Scope Machine
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [string] $Path,
    [ValidateSet('User', 'Machine')] [string] $Scope = 'User'
)
$ErrorActionPreference = 'Stop'
if (-not (Test-Path -LiteralPath $Path -PathType Container)) {
    Write-Warning "$Path is not reachable now (is the mount running?); setting it anyway."
}
if ($PSCmdlet.ShouldProcess("$Scope environment", "HF_HUB_CACHE=$Path")) {
    [Environment]::SetEnvironmentVariable('HF_HUB_CACHE', $Path, $Scope)
    [Environment]::SetEnvironmentVariable('HF_HUB_DISABLE_SYMLINKS_WARNING', '1', $Scope)
    Write-Output "HF_HUB_CACHE=$Path ($Scope); new processes use the mounted cache."
}
