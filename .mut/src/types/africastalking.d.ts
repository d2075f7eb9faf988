declare module 'africastalking' {
  interface SmsSendOptions {
    to: string | string[];
    message: string;
    from?: string;
    enqueue?: boolean;
  }
  interface AfricasTalking {
    SMS: { send(options: SmsSendOptions): Promise<unknown> };
  }
  function africastalking(options: { username: string; apiKey: string; format?: 'json' | 'xml' }): AfricasTalking;
  export = africastalking;
}
