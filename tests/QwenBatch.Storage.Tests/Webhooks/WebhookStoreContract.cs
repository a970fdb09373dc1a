using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Webhooks;

/// <summary>
/// What every backend's <see cref="IWebhookStore"/> must do: a delivery id counts once per provider until it is older
/// than the age a delivery may have, and a delivery finds only the edits parked at that provider under its task.
/// </summary>
public abstract class WebhookStoreContract : StoreContract
{
    private static readonly TimeSpan Remembered = TimeSpan.FromMinutes(10);

    [Fact]
    public async Task RecordDeliveryAsync_FirstTime_IsNew_AndAReplayOnAnyStoreIsNot()
    {
        (await RecordAsync("msg-1")).ShouldBeTrue();

        (await RecordAsync("msg-1")).ShouldBeFalse();
        (await OpenStore().RecordDeliveryAsync(Provider, "msg-1", Now - Remembered, Ct)).ShouldBeFalse("another process sees the same deliveries");
        (await RecordAsync("msg-2")).ShouldBeTrue();
    }

    [Fact]
    public async Task RecordDeliveryAsync_SameIdFromAnotherProvider_IsNew()
    {
        (await RecordAsync("msg-1")).ShouldBeTrue();

        (await Store.RecordDeliveryAsync(OtherProvider, "msg-1", Now - Remembered, Ct)).ShouldBeTrue();
    }

    [Fact]
    public async Task RecordDeliveryAsync_IdOlderThanTheCutoff_IsForgotten()
    {
        await RecordAsync("msg-1");
        Time.Advance(Remembered - TimeSpan.FromSeconds(1));
        (await RecordAsync("msg-1")).ShouldBeFalse("still within the age a delivery may have");

        Time.Advance(TimeSpan.FromSeconds(2));

        (await RecordAsync("msg-1")).ShouldBeTrue("a delivery that old is refused by its timestamp before it gets here");
    }

    [Fact]
    public async Task FindAtProviderAsync_ReturnsOnlyParkedEditsOfThatProviderUnderTheIds()
    {
        var edits = await QueueAsync(4);
        var parked = await PutAtProviderAsync(edits[0], "task-a");
        await PutAtProviderAsync(edits[1], "task-b");
        var downloading = await PutAtProviderAsync(edits[2], "task-c");
        await PutAsync(downloading, EditState.Downloading);

        var found = await Store.FindAtProviderAsync(Provider, ["task-a", "task-c", "task-unknown"], Ct);

        found.Count.ShouldBe(1);
        ShouldBeUnchanged(found[0], parked);
        (await Store.FindAtProviderAsync(OtherProvider, ["task-a"], Ct)).ShouldBeEmpty("a request id means something only to its own provider");
        (await Store.FindAtProviderAsync(Provider, [], Ct)).ShouldBeEmpty();
    }

    private Task<bool> RecordAsync(string id) => Store.RecordDeliveryAsync(Provider, id, Now - Remembered, Ct);

    private async Task<EditRecord> PutAtProviderAsync(EditRecord edit, string requestId)
    {
        (await MoveAsync(edit, edit with { State = EditState.AtProvider, RequestId = requestId, SubmittedAt = Now })).ShouldBeTrue();
        return await GetAsync(edit.Id);
    }
}
